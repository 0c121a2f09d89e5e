"""Server-side grading: right/wrong, one response per question, tampered or foreign answers refused."""

import pytest

from quizzes.models import Attempt, Response, ReviewCard
from quizzes.services import InvalidAnswer, NothingToPractise, attempt_start, response_submit
from tests.factories import QuestionFactory

from .conftest import correct_option, wrong_option


def test_a_correct_answer_is_graded_correct(attempt):
    question_id = attempt.question_ids[0]
    submission = response_submit(
        attempt=attempt, question_id=question_id, option_public_id=str(correct_option(question_id).public_id)
    )
    assert submission.created and submission.response.is_correct


def test_a_wrong_answer_is_graded_wrong_and_enters_the_review_queue(attempt, learner):
    question_id = attempt.question_ids[0]
    submission = response_submit(
        attempt=attempt, question_id=question_id, option_public_id=str(wrong_option(question_id).public_id)
    )
    assert not submission.response.is_correct
    assert ReviewCard.objects.get(user=learner, question_id=question_id).lapses == 1


def test_submitting_twice_records_one_response(attempt):
    question_id = attempt.question_ids[0]
    option = str(wrong_option(question_id).public_id)
    first = response_submit(attempt=attempt, question_id=question_id, option_public_id=option)
    second = response_submit(
        attempt=attempt, question_id=question_id, option_public_id=str(correct_option(question_id).public_id)
    )
    assert not second.created and second.response.pk == first.response.pk
    assert not second.response.is_correct  # the first answer stands
    assert Response.objects.filter(attempt=attempt).count() == 1


def test_an_option_of_another_question_is_refused(attempt):
    other = QuestionFactory()
    with pytest.raises(InvalidAnswer, match="not one of this question's options"):
        response_submit(
            attempt=attempt,
            question_id=attempt.question_ids[0],
            option_public_id=str(correct_option(other.pk).public_id),
        )
    assert not Response.objects.exists()


@pytest.mark.parametrize("tampered", ["1", "not-a-uuid", "", "00000000-0000-0000-0000-000000000000"])
def test_a_tampered_option_id_is_refused(attempt, tampered):
    with pytest.raises(InvalidAnswer):
        response_submit(attempt=attempt, question_id=attempt.question_ids[0], option_public_id=tampered)


def test_a_question_outside_the_attempt_is_refused(attempt):
    other = QuestionFactory()
    with pytest.raises(InvalidAnswer, match="not part of this practice session"):
        response_submit(attempt=attempt, question_id=other.pk, option_public_id=str(correct_option(other.pk).public_id))


def test_answering_every_question_finishes_the_attempt(attempt):
    for question_id in attempt.question_ids:
        response_submit(
            attempt=attempt, question_id=question_id, option_public_id=str(correct_option(question_id).public_id)
        )
    attempt.refresh_from_db()
    assert attempt.finished_at is not None


def test_missed_practice_contains_exactly_the_questions_last_answered_wrong(attempt, learner, practice_lesson):
    first, second, third = attempt.question_ids
    response_submit(attempt=attempt, question_id=first, option_public_id=str(wrong_option(first).public_id))
    response_submit(attempt=attempt, question_id=second, option_public_id=str(correct_option(second).public_id))
    response_submit(attempt=attempt, question_id=third, option_public_id=str(wrong_option(third).public_id))
    retry = attempt_start(user=learner, kind=Attempt.Kind.MISSED)
    assert sorted(retry.question_ids) == sorted([first, third])

    # fixing one of them removes it from the next "what I missed"
    response_submit(attempt=retry, question_id=first, option_public_id=str(correct_option(first).public_id))
    assert attempt_start(user=learner, kind=Attempt.Kind.MISSED).question_ids == [third]


def test_nothing_missed_yet_says_so(learner, db):
    with pytest.raises(NothingToPractise, match="you have not missed any question yet"):
        attempt_start(user=learner, kind=Attempt.Kind.MISSED)
