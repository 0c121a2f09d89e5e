"""The question admin refuses what it cannot keep (option letters in authored text, an unexportable question)
with a message, never a 500; statistics need the question permission; an imported GIFT title becomes a key."""

from django.contrib.auth.models import Permission
from django.urls import reverse

from quizzes.models import Question
from tests.factories import QuestionFactory, UserFactory

from .test_admin_authoring import question_form


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


def test_a_gift_title_that_is_not_a_slug_becomes_an_editable_key(client, instructor, lesson):
    from quizzes.importing import questions_import

    questions_import(
        content=b"::Question 1 (intro)::Which?{=A ~B}", file_format="gift", default_lesson=lesson, filename="x.gift"
    )
    question = Question.objects.get()
    assert question.key == "question-1-intro"
    client.force_login(instructor)
    assert client.get(reverse("admin:quizzes_question_change", args=[question.pk])).status_code == 200
