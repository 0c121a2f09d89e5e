"""A draft lesson's questions stay invisible to learners everywhere practice can reach them."""

from django.urls import reverse

from quizzes import services
from quizzes.models import Attempt, Response
from tests.factories import LessonFactory, QuestionFactory

from .conftest import wrong_option


def make_draft_with_questions():
    draft = LessonFactory(slug="unfinished", title="Unfinished", published=False)
    return draft, [QuestionFactory(lesson=draft) for _ in range(3)]


def test_mixed_practice_never_draws_a_draft_lessons_questions(learner, practice_lesson):
    _, hidden = make_draft_with_questions()
    for _ in range(5):  # mixed practice samples at random: several draws, none may include a draft's question
        attempt = services.attempt_start(user=learner, kind=Attempt.Kind.MIXED)
        assert not set(attempt.question_ids) & {q.id for q in hidden}


def test_missed_and_review_forget_questions_once_their_lesson_becomes_a_draft(learner):
    lesson = LessonFactory(slug="becomes-draft")
    question = QuestionFactory(lesson=lesson)
    attempt = services.attempt_start(user=learner, kind=Attempt.Kind.LESSON, lesson=lesson)
    wrong = str(wrong_option(question.id).public_id)
    services.response_submit(attempt=attempt, question_id=question.id, option_public_id=wrong)
    lesson.published = False
    lesson.save()
    for kind in (Attempt.Kind.MISSED, Attempt.Kind.MIXED):
        try:
            started = services.attempt_start(user=learner, kind=kind)
        except services.NothingToPractise:
            continue
        assert question.id not in started.question_ids


def test_a_session_started_before_the_lesson_became_a_draft_skips_its_questions(client, learner):
    lesson = LessonFactory(slug="half-done")
    questions = [QuestionFactory(lesson=lesson) for _ in range(2)]
    attempt = services.attempt_start(user=learner, kind=Attempt.Kind.LESSON, lesson=lesson)
    lesson.published = False
    lesson.save()
    client.force_login(learner)
    page = client.get(reverse("quizzes:attempt", args=[attempt.id])).content.decode()
    assert questions[0].stem not in page and questions[1].stem not in page
    answer = client.post(
        reverse("quizzes:answer", args=[attempt.id]),
        {"question": questions[0].id, "option": str(wrong_option(questions[0].id).public_id)},
    )
    assert answer.status_code == 400
    assert not Response.objects.filter(attempt=attempt).exists()
