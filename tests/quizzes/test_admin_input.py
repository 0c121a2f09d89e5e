"""Admin input cannot break pages: structured fields are lists of short lines, checked in the form and the model."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from lessons.models import Lesson
from quizzes.exchange import questions_export
from quizzes.models import Attempt, Question
from quizzes.services import attempt_start
from tests.factories import QuestionFactory
from tests.quizzes.test_admin_authoring import question_form


def lesson_form(lesson, **extra):
    return {
        "title": lesson.title,
        "slug": lesson.slug,
        "order": 3,
        "published": "on",
        "minutes": 7,
        "summary": "s",
        "objectives": "",
        "body_markdown": "Text",
        **extra,
    }


def test_an_objective_typed_as_5_is_one_line_and_the_lesson_page_still_renders(client, instructor, lesson):
    client.force_login(instructor)
    response = client.post(
        reverse("admin:lessons_lesson_change", args=[lesson.pk]), lesson_form(lesson, objectives="5\nRead a trace\n\n")
    )
    assert response.status_code == 302
    lesson.refresh_from_db()
    assert lesson.objectives == ["5", "Read a trace"]
    page = client.get(lesson.get_absolute_url())
    assert page.status_code == 200 and "<li>5</li>" in page.content.decode()


def test_the_admin_edits_lines_in_a_textarea_not_a_json_box(client, instructor):
    question = QuestionFactory(tags=["retries", "timeouts"], common_mistakes=["Adding instead of multiplying"])
    client.force_login(instructor)
    html = client.get(reverse("admin:quizzes_question_change", args=[question.pk])).content.decode()
    assert '<textarea name="tags" cols="60" rows="4"' in html
    assert ">\nretries\ntimeouts</textarea>" in html and "Adding instead of multiplying</textarea>" in html
    assert "[&quot;" not in html


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tags", "retries, timeouts", "Line 1 contains &#x27;,&#x27;, which cannot be used here."),
        ("tags", "ok\n" + "x" * 51, "Line 2 is 51 characters long; at most 50."),
        ("common_mistakes", "Option B is tempting", "mentions an option letter"),
    ],
)
def test_a_bad_line_is_refused_with_the_field_and_the_problem(client, instructor, lesson, field, value, message):
    client.force_login(instructor)
    data = question_form(lesson, [("Proxies traffic", True), ("Stores data", False)], **{field: value})
    response = client.post(reverse("admin:quizzes_question_add"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Question.objects.exists()


def test_option_feedback_naming_a_letter_is_refused_like_everywhere_else(client, instructor, lesson):
    client.force_login(instructor)
    data = question_form(lesson, [("Proxies traffic", True), ("Stores data", False)])
    data["options-1-feedback"] = "Option B stores nothing."
    response = client.post(reverse("admin:quizzes_question_add"), data)
    assert "mentions an option letter" in response.content.decode()
    assert not Question.objects.exists()


@pytest.mark.parametrize("value", [5, [1, 2], [["nested"]], {"a": 1}, ["two\nlines"], [""]])
def test_the_model_refuses_any_other_shape(value, lesson):
    question = QuestionFactory.build(lesson=lesson, tags=value)
    with pytest.raises(ValidationError) as error:
        question.full_clean(exclude=["key"])
    assert "tags" in error.value.message_dict
    lesson_with_bad = Lesson(slug="x", title="x", body_markdown="x", objectives=value)
    with pytest.raises(ValidationError) as error:
        lesson_with_bad.full_clean()
    assert "objectives" in error.value.message_dict


def test_a_saved_common_mistake_typed_as_5_does_not_break_answering(client, instructor, learner, lesson):
    client.force_login(instructor)
    data = question_form(lesson, [("Proxies traffic", True), ("Stores data", False)], common_mistakes="5")
    assert client.post(reverse("admin:quizzes_question_add"), data).status_code == 302
    question = Question.objects.get()
    assert question.common_mistakes == ["5"]
    assert "// tags: basics" in questions_export(questions=[question], file_format="gift")

    attempt = attempt_start(user=learner, kind=Attempt.Kind.LESSON, lesson=lesson)
    client.force_login(learner)
    option = question.options.get(is_correct=False)
    response = client.post(
        reverse("quizzes:answer", args=[attempt.pk]), {"question": question.pk, "option": str(option.public_id)}
    )
    assert response.status_code == 200 and "<li>5</li>" in response.content.decode()
