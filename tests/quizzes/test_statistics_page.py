"""The admin statistics page computes Moodle's figures from real responses (hand-checked example)."""

from django.urls import reverse
from django.utils import timezone

from quizzes.models import Attempt, Response
from tests.factories import QuestionFactory, UserFactory

from .conftest import correct_option, wrong_option


def finished_attempt(lesson, answers):
    """answers: [(question, correct?)]"""
    attempt = Attempt.objects.create(
        user=UserFactory(),
        kind=Attempt.Kind.LESSON,
        lesson=lesson,
        question_ids=[q.pk for q, _ in answers],
        finished_at=timezone.now(),
    )
    for question, correct in answers:
        option = correct_option(question.pk) if correct else wrong_option(question.pk)
        Response.objects.create(attempt=attempt, question=question, option=option, is_correct=correct, shown_order=[])
    return attempt


def test_statistics_match_a_hand_computed_example(client, instructor, lesson, django_assert_max_num_queries):
    q1, q2 = QuestionFactory(lesson=lesson, key="q-one"), QuestionFactory(lesson=lesson, key="q-two")
    # Totals: A1 = 2, A2 = 1, A3 = 0.
    finished_attempt(lesson, [(q1, True), (q2, True)])
    finished_attempt(lesson, [(q1, True), (q2, False)])
    finished_attempt(lesson, [(q1, False), (q2, False)])
    # q1: x = [1, 1, 0] -> facility 66.7%; sample SD = sqrt(((1/3)^2 + (1/3)^2 + (2/3)^2) / 2) = 0.577 -> 57.7%;
    # rest = [1, 0, 0]; r(x, rest) = (1/3) / sqrt((2/3)(2/3)) = 0.5 -> 50.0.
    # q2: x = [1, 0, 0] -> facility 33.3%, SD 57.7%, rest = [1, 1, 0] -> r = 0.5 -> 50.0.
    client.force_login(instructor)
    html = client.get(reverse("admin:quizzes_question_statistics_lesson", args=[lesson.slug])).content.decode()
    assert "Over <strong>3</strong> finished practice sessions" in html
    row_one = html[html.index("q-one") : html.index("q-two")]
    assert "66.7%" in row_one and "57.7%" in row_one and "50.0" in row_one
    row_two = html[html.index("q-two") :]
    assert "33.3%" in row_two and "50.0" in row_two
    # q1's wrong picks all went to one distractor; the other two are flagged as never picked
    assert row_one.count("nobody picks this") == 2


def test_statistics_without_sessions_say_so(client, instructor, lesson):
    QuestionFactory(lesson=lesson)
    client.force_login(instructor)
    html = client.get(reverse("admin:quizzes_question_statistics_lesson", args=[lesson.slug])).content.decode()
    assert "No finished sessions yet" in html


def test_learners_cannot_see_statistics(client, learner, lesson):
    client.force_login(learner)
    assert client.get(reverse("admin:quizzes_question_statistics_lesson", args=[lesson.slug])).status_code == 302
