"""Edge cases found in review: deleted or protected questions, unexportable questions, shared rules
in the admin, permissions on statistics, and an all-or-nothing course load."""

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db.models import ProtectedError
from django.urls import reverse

from lessons.models import Lesson
from quizzes.models import Attempt, Question, ReviewCard
from quizzes.services import attempt_start, response_submit
from tests.factories import QuestionFactory, UserFactory

from .conftest import correct_option, wrong_option
from .test_admin_authoring import question_form


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


def test_the_admin_refuses_option_letters_in_authored_text(client, instructor, lesson):
    client.force_login(instructor)
    data = question_form(lesson, [("Proxies traffic", True), ("Stores data", False)], stem="Why is Option B right?")
    response = client.post(reverse("admin:quizzes_question_add"), data)
    assert "mentions an option letter" in response.content.decode()
    assert not Question.objects.exists()


def test_an_unexportable_question_is_reported_not_a_500(client, instructor):
    question = QuestionFactory(tags=["a,b"])
    client.force_login(instructor)
    response = client.post(
        reverse("admin:quizzes_question_changelist"),
        {"action": "export_gift", "_selected_action": [question.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Nothing was exported." in response.content.decode()


def test_staff_without_question_permissions_cannot_read_statistics(client, lesson):
    staff = UserFactory(username="staffer", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("admin:quizzes_question_statistics_lesson", args=[lesson.slug])).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_question"))
    assert client.get(reverse("admin:quizzes_question_statistics_lesson", args=[lesson.slug])).status_code == 200


def test_a_bad_practice_file_leaves_the_lessons_unloaded_too(tmp_path, settings, db):
    (tmp_path / "broken.yaml").write_text("lesson: why-service-mesh\nquestions:\n  - key: q\n", encoding="utf-8")
    settings.COURSE_CONTENT_DIRS = {**settings.COURSE_CONTENT_DIRS, "quizzes": tmp_path}
    with pytest.raises(CommandError, match=r"Nothing was loaded\. broken\.yaml: questions\[0\] \(q\): missing"):
        call_command("load_course")
    assert not Lesson.objects.exists() and not Question.objects.exists()


def test_a_gift_title_that_is_not_a_slug_becomes_an_editable_key(client, instructor, lesson):
    from quizzes.importing import questions_import

    questions_import(
        content=b"::Question 1 (intro)::Which?{=A ~B}", file_format="gift", default_lesson=lesson, filename="x.gift"
    )
    question = Question.objects.get()
    assert question.key == "question-1-intro"
    client.force_login(instructor)
    assert client.get(reverse("admin:quizzes_question_change", args=[question.pk])).status_code == 200


def test_the_score_page_shows_stems_as_text_not_entities(client, learner, practice_lesson):
    question = QuestionFactory(lesson=practice_lesson, stem="Service A -> Sidecar A & p99 < 100 ms?")
    attempt = Attempt.objects.create(
        user=learner, kind=Attempt.Kind.LESSON, lesson=practice_lesson, question_ids=[question.pk]
    )
    response_submit(attempt=attempt, question_id=question.pk, option_public_id=str(wrong_option(question.pk).public_id))
    client.force_login(learner)
    html = client.get(attempt.get_absolute_url()).content.decode()
    assert "Service A -&gt; Sidecar A &amp; p99 &lt; 100 ms?" in html  # escaped once, shows as typed
    assert "&amp;gt;" not in html
