"""Spaced repetition with FSRS: the rating follows from the result, never from self-rating."""

from datetime import datetime

from fsrs import Card, Rating, Scheduler

SCHEDULER = Scheduler()


def rating_for(*, correct: bool) -> Rating:
    # A right answer is "Good", a wrong one "Again": the learner is not asked how it felt.
    return Rating.Good if correct else Rating.Again


def new_state() -> dict:
    return Card().to_dict()


def review(state: dict, *, correct: bool, now: datetime) -> tuple[dict, datetime]:
    card, _ = SCHEDULER.review_card(Card.from_dict(state), rating_for(correct=correct), now)
    return card.to_dict(), card.due
