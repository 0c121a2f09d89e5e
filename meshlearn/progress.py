"""How far a learner is through a list of things (lessons, labs): the counts the course and lab pages show."""

from collections.abc import Sequence
from typing import Protocol


class Completable(Protocol):
    completed: bool


class ProgressCounts:
    """For a frozen dataclass with `items`, each with a `completed` flag."""

    items: Sequence[Completable]

    @property
    def completed_count(self) -> int:
        return sum(item.completed for item in self.items)

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def percent(self) -> int:
        return round(100 * self.completed_count / self.total) if self.items else 0
