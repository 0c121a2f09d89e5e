"""Missed questions come back on the FSRS schedule; the rating follows from the result."""

from datetime import timedelta

from django.utils import timezone

from quizzes.models import Attempt, ReviewCard
from quizzes.services import attempt_start, response_submit

from .conftest import correct_option, wrong_option


def test_a_missed_question_is_due_for_review_soon_and_a_right_answer_pushes_it_back(attempt, learner):
    question_id = attempt.question_ids[0]
    response_submit(attempt=attempt, question_id=question_id, option_public_id=str(wrong_option(question_id).public_id))
    card = ReviewCard.objects.get(user=learner, question_id=question_id)
    assert card.due - timezone.now() < timedelta(minutes=15)  # "Again": back within minutes

    ReviewCard.objects.filter(pk=card.pk).update(due=timezone.now() - timedelta(seconds=1))
    review = attempt_start(user=learner, kind=Attempt.Kind.REVIEW)
    assert review.question_ids == [question_id]

    response_submit(
        attempt=review, question_id=question_id, option_public_id=str(correct_option(question_id).public_id)
    )
    card.refresh_from_db()
    assert card.due > timezone.now() + timedelta(minutes=5)  # "Good": later than "Again"
    assert card.lapses == 1


def test_questions_never_missed_create_no_card(attempt, learner):
    question_id = attempt.question_ids[0]
    response_submit(
        attempt=attempt, question_id=question_id, option_public_id=str(correct_option(question_id).public_id)
    )
    assert not ReviewCard.objects.filter(user=learner).exists()
