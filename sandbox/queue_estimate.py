"""How long a queued experiment should wait for a slot, from how long experiments really run here.

Pure: no database, no clock. The selector passes what it measured: how long each running experiment has run,
and the real durations of recently ended ones. Two answers:

- the estimate: each running experiment ends as the recent ones that ran at least as long did (the median of
  their remaining time), every experiment ahead in the queue then runs a typical (median) duration. Medians,
  because durations are lopsided: most end at the idle timeout, a few run to the lifetime.
- the bound: every running experiment runs to its lifetime and so does every one ahead. True whatever
  happens, and far from what usually happens, so a page shows it as "at the latest", never as the estimate.

With no ended experiment to learn from there is no estimate, only the bound.
"""

from __future__ import annotations

import heapq
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueWait:
    estimate_seconds: int | None  # None: nothing measured yet
    bound_seconds: int


def _remaining(elapsed: float, durations: list[float], lifetime: float) -> float:
    """Expected time left of an experiment that has run `elapsed` seconds."""
    left = max(lifetime - elapsed, 0.0)
    longer = [duration - elapsed for duration in durations if duration > elapsed]
    if not longer:
        # It already ran longer than any recent one: somewhere between now and its lifetime, so the middle.
        return left / 2
    return min(statistics.median(longer), left)


def _turn(free_at: list[float], *, ahead: int, each_runs: float) -> float:
    """When our turn comes: the experiments ahead take the slots in order as they free, each for `each_runs`."""
    slots = list(free_at)
    heapq.heapify(slots)
    for _ in range(ahead):
        heapq.heappush(slots, heapq.heappop(slots) + each_runs)
    return slots[0]


def queue_wait(
    *, ahead: int, capacity: int, running_elapsed: list[float], recent_durations: list[float], lifetime: float
) -> QueueWait:
    """Seconds until a slot is ours, with `ahead` experiments queued before us and `capacity` slots in all."""
    running = [max(elapsed, 0.0) for elapsed in running_elapsed]
    free_now = [0.0] * max(capacity - len(running), 0)
    if not running and not free_now:
        free_now = [0.0]  # no slot at all is a misconfiguration; do not divide the queue by nothing
    bound = _turn(free_now + [max(lifetime - elapsed, 0.0) for elapsed in running], ahead=ahead, each_runs=lifetime)
    durations = [duration for duration in recent_durations if duration >= 0]
    if not durations:
        return QueueWait(None, round(bound))
    typical = statistics.median(durations)
    estimate = _turn(
        free_now + [_remaining(elapsed, durations, lifetime) for elapsed in running], ahead=ahead, each_runs=typical
    )
    return QueueWait(round(min(estimate, bound)), round(bound))
