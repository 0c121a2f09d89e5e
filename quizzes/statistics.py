"""Item analysis of quiz attempts with Moodle's definitions, on plain data (no Django, no database).

Definitions (Moodle, "Quiz statistics calculations"), for a question answered in n attempts,
x = the question's score in an attempt (0..1), X = the attempt's total score:

- facility index F = 100 · mean(x): how easy the question was.
- standard deviation SD = 100 · sqrt(Σ(x − mean x)² / (n − 1)): Moodle uses the sample
  standard deviation (n − 1), so do we; undefined (None) for fewer than 2 attempts.
- discrimination index D = 100 · r(x, X − x): the Pearson correlation between the question's
  score and the score on the rest of the test. Undefined (None) for fewer than 2 attempts or
  when either side does not vary (everyone right, or everyone's rest score the same).
  Moodle's guidance reads D ≥ 30 as adequate or better, 0–30 as weak and below 0 as a
  question that probably measures the wrong thing; ``discrimination_flag`` says "weak" or
  "negative" accordingly. (Moodle's report itself shades rows by discriminative efficiency,
  which is not computed here.)

Per option: how many attempts picked it, and how many of those were in the top and bottom
third of attempts ranked by total score (n // 3 attempts each; equal totals keep input
order). Flags: options nobody picked, and distractors picked more often by the top third
than by the bottom third. The total is the sum of an attempt's item scores, so attempts
should cover the same questions, as in one quiz.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

ADEQUATE_DISCRIMINATION = 30.0


@dataclass(frozen=True)
class ItemResponse:
    score: float  # the fraction of the question's marks earned, 0..1
    option_id: Hashable | None = None  # the option picked; None when left unanswered


Attempt = Mapping[Hashable, ItemResponse]  # question id -> response


@dataclass(frozen=True)
class QuestionOptions:
    option_ids: Sequence[Hashable]  # in the question's stored order
    correct_option_id: Hashable


@dataclass(frozen=True)
class OptionStats:
    option_id: Hashable
    correct: bool
    count: int
    top_third_count: int
    bottom_third_count: int

    @property
    def never_picked(self) -> bool:
        return self.count == 0

    @property
    def favoured_by_strong_learners(self) -> bool:
        """A distractor that the top third picks more often than the bottom third."""
        return not self.correct and self.top_third_count > self.bottom_third_count


@dataclass(frozen=True)
class QuestionStats:
    question_id: Hashable
    attempts: int
    facility_index: float | None  # %
    standard_deviation: float | None  # %, sample SD as Moodle computes it
    discrimination_index: float | None  # 100 · r(item score, rest of test)
    options: list[OptionStats]

    @property
    def discrimination_flag(self) -> str | None:
        if self.discrimination_index is None:
            return None
        if self.discrimination_index < 0:
            return "negative"
        if self.discrimination_index < ADEQUATE_DISCRIMINATION:
            return "weak"
        return None

    @property
    def unpicked_option_ids(self) -> list[Hashable]:
        return [option.option_id for option in self.options if option.never_picked] if self.attempts else []

    @property
    def distractors_favoured_by_strong_learners(self) -> list[Hashable]:
        return [option.option_id for option in self.options if option.favoured_by_strong_learners]


def item_analysis(attempts: Sequence[Attempt], questions: Mapping[Hashable, QuestionOptions]) -> list[QuestionStats]:
    """Statistics for every question in ``questions``, in that order."""
    for attempt in attempts:
        for question_id, response in attempt.items():
            if not 0.0 <= response.score <= 1.0:
                raise ValueError(f"question {question_id!r}: score {response.score} is outside 0..1")
    totals = [sum(response.score for response in attempt.values()) for attempt in attempts]
    return [_question_stats(question_id, options, attempts, totals) for question_id, options in questions.items()]


def _question_stats(
    question_id: Hashable, options: QuestionOptions, attempts: Sequence[Attempt], totals: list[float]
) -> QuestionStats:
    answered = [(attempt[question_id], total) for attempt, total in zip(attempts, totals) if question_id in attempt]
    scores = [response.score for response, _ in answered]
    rest = [total - response.score for response, total in answered]
    n = len(scores)

    # Rank by total score, strongest first; sorted() is stable, so equal totals keep input order.
    ranked = sorted(answered, key=lambda pair: -pair[1])
    third = n // 3
    top = [response.option_id for response, _ in ranked[:third]]
    bottom = [response.option_id for response, _ in ranked[n - third :]] if third else []

    picked = [response.option_id for response, _ in answered if response.option_id is not None]
    unknown = set(picked) - set(options.option_ids)
    if unknown:
        names = sorted(map(repr, unknown))
        raise ValueError(f"question {question_id!r}: responses name options it does not have: {names}")

    return QuestionStats(
        question_id=question_id,
        attempts=n,
        facility_index=100 * sum(scores) / n if n else None,
        standard_deviation=100 * _sample_standard_deviation(scores) if n >= 2 else None,
        discrimination_index=_times_100(_pearson(scores, rest)),
        options=[
            OptionStats(
                option_id=option_id,
                correct=option_id == options.correct_option_id,
                count=picked.count(option_id),
                top_third_count=top.count(option_id),
                bottom_third_count=bottom.count(option_id),
            )
            for option_id in options.option_ids
        ],
    )


def _sample_standard_deviation(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _pearson(xs: list[float], ys: list[float]) -> float | None:
    """Pearson's r, or None when it is undefined (fewer than 2 pairs, or a side with no variance)."""
    n = len(xs)
    if n < 2:
        return None
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    syy = sum((y - mean_y) ** 2 for y in ys)
    # Float noise can leave a tiny non-zero variance for identical scores; treat it as none.
    if sxx <= 1e-12 or syy <= 1e-12:
        return None
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    return sxy / math.sqrt(sxx * syy)


def _times_100(value: float | None) -> float | None:
    return None if value is None else 100 * value
