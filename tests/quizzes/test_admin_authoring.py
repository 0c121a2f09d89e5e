"""Instructors author questions in the admin: validated inline options, steps, a learner-eye preview."""

from django.urls import reverse

from quizzes.models import Question
from tests.factories import QuestionFactory


def question_form(lesson, options, **extra):
    data = {
        "key": "new-question",
        "lesson": lesson.pk,
        "stem": "What does a **sidecar** do?",
        "difficulty": "easy",
        "tags": "basics",
        "published": "on",
        "order": 0,
        "quick_check": "Sidecars carry traffic.",
        "common_mistakes": "Thinking the app retries",
        "general_feedback": "",
        "options-TOTAL_FORMS": str(len(options)),
        "options-INITIAL_FORMS": "0",
        "options-MIN_NUM_FORMS": "2",
        "options-MAX_NUM_FORMS": "1000",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-order": "0",
        "steps-0-title": "Recall",
        "steps-0-body": "It proxies traffic.",
    }
    for index, (text, correct) in enumerate(options):
        data[f"options-{index}-order"] = str(index)
        data[f"options-{index}-text"] = text
        data[f"options-{index}-feedback"] = f"About {text}"
        if correct:
            data[f"options-{index}-is_correct"] = "on"
    data.update(extra)
    return data


def test_instructor_creates_a_question_with_options_and_steps(client, instructor, lesson):
    client.force_login(instructor)
    response = client.post(
        reverse("admin:quizzes_question_add"),
        question_form(lesson, [("Proxies traffic", True), ("Stores data", False)]),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    question = Question.objects.get(key="new-question")
    assert question.options.count() == 2 and question.steps.count() == 1
    assert "<strong>sidecar</strong>" in question.stem_html


def test_a_question_without_a_correct_option_is_refused(client, instructor, lesson):
    client.force_login(instructor)
    response = client.post(reverse("admin:quizzes_question_add"), question_form(lesson, [("A", False), ("B", False)]))
    assert response.status_code == 200
    assert "Mark exactly one option as correct (0 are marked)." in response.content.decode()
    assert not Question.objects.exists()


def test_a_question_with_two_correct_options_is_refused(client, instructor, lesson):
    client.force_login(instructor)
    response = client.post(
        reverse("admin:quizzes_question_add"), question_form(lesson, [("A", True), ("B", True), ("C", False)])
    )
    assert "Mark exactly one option as correct (2 are marked)." in response.content.decode()


def test_a_question_with_one_option_is_refused(client, instructor, lesson):
    client.force_login(instructor)
    data = question_form(lesson, [("A", True)], **{"options-MIN_NUM_FORMS": "0"})
    response = client.post(reverse("admin:quizzes_question_add"), data)
    assert response.status_code == 200 and not Question.objects.exists()
    assert (
        "at least two options" in response.content.decode()
        or "Please submit at least 2 forms." in response.content.decode()
    )


def test_preview_shows_the_question_and_the_result_as_a_learner_sees_them(client, instructor):
    question = QuestionFactory()
    client.force_login(instructor)
    html = client.get(reverse("admin:quizzes_question_preview", args=[question.pk])).content.decode()
    assert question.stem in html
    assert "About your answer (B)" in html and "Feedback for: Stores data" in html
    assert "Final answer:</strong> Carries traffic for its service → Option A" in html


def test_learners_cannot_open_the_question_admin(client, learner):
    question = QuestionFactory()
    client.force_login(learner)
    assert client.get(reverse("admin:quizzes_question_preview", args=[question.pk])).status_code == 302
