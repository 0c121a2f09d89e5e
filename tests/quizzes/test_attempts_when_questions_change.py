"""An attempt stays true when its questions change: a deleted question is skipped, an answered one is kept,
and missing the same question in two sessions gives one review card."""

import pytest
from django.db.models import ProtectedError
from django.urls import reverse

from quizzes.models import Attempt, Question, ReviewCard
from quizzes.services import attempt_start, response_submit

from .conftest import correct_option, wrong_option


def test_a_question_deleted_before_it_is_reached_is_skipped(client, learner, attempt):
    first, second, third = attempt.question_ids
    response_submit(attempt=attempt, question_id=first, option_public_id=str(correct_option(first).public_id))
    Question.objects.filter(pk=second).delete()
    client.force_login(learner)

    html = client.get(attempt.get_absolute_url()).content.decode()
    assert Question.objects.get(pk=third).stem in html

    client.post(
        reverse("quizzes:answer", args=[attempt.pk]),
        {"question": third, "option": str(correct_option(third).public_id)},
    )
    attempt.refresh_from_db()
    assert attempt.finished_at is not None
    assert "You scored 2 of 2" in client.get(attempt.get_absolute_url()).content.decode()


def test_an_answered_question_cannot_be_deleted_so_scores_stay_true(attempt):
    first = attempt.question_ids[0]
    response_submit(attempt=attempt, question_id=first, option_public_id=str(correct_option(first).public_id))
    with pytest.raises(ProtectedError):
        Question.objects.filter(pk=first).delete()


def test_two_sessions_missing_the_same_question_share_one_review_card(learner, practice_lesson):
    one = attempt_start(user=learner, kind=Attempt.Kind.LESSON, lesson=practice_lesson)
    two = attempt_start(user=learner, kind=Attempt.Kind.LESSON, lesson=practice_lesson)
    question_id = one.question_ids[0]
    for attempt in (one, two):
        response_submit(
            attempt=attempt, question_id=question_id, option_public_id=str(wrong_option(question_id).public_id)
        )
    card = ReviewCard.objects.get(user=learner, question_id=question_id)
    assert card.lapses == 2
