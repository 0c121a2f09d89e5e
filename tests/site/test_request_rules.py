"""Request rules every page follows: HEAD works, bodies are capped, and the browser policies are sent."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from quizzes.models import Attempt, Response
from quizzes.services import attempt_start
from tests.factories import LessonFactory, QuestionFactory
from tests.quizzes.conftest import wrong_option


@pytest.fixture
def attempt(learner):
    lesson = LessonFactory(slug="limits")
    QuestionFactory(lesson=lesson)
    return attempt_start(user=learner, kind=Attempt.Kind.LESSON, lesson=lesson)


@pytest.mark.parametrize("name,args", [("lessons:course", []), ("quizzes:home", []), ("healthz", [])])
def test_head_is_answered_like_get_without_a_body(client, db, name, args):
    response = client.head(reverse(name, args=args))
    assert response.status_code in (200, 503)  # healthz may be 503 without Redis; never 405
    assert response.content == b""


def test_head_on_a_lesson_page(client, db):
    lesson = LessonFactory()
    assert client.head(lesson.get_absolute_url()).status_code == 200


def test_a_30_mb_upload_to_the_answer_form_is_refused_at_once_and_saves_nothing(client, learner, attempt):
    client.force_login(learner)
    question_id = attempt.question_ids[0]
    blob = SimpleUploadedFile("big.bin", b"\0" * (30 * 1024 * 1024))
    response = client.post(
        reverse("quizzes:answer", args=[attempt.pk]),
        {"question": question_id, "option": str(wrong_option(question_id).public_id), "upload": blob},
    )
    assert response.status_code == 413
    assert "too large" in response.content.decode() and "Nothing was saved" in response.content.decode()
    assert not Response.objects.exists()


def test_an_ordinary_answer_still_fits_under_the_cap(client, learner, attempt):
    client.force_login(learner)
    question_id = attempt.question_ids[0]
    response = client.post(
        reverse("quizzes:answer", args=[attempt.pk]),
        {"question": question_id, "option": str(wrong_option(question_id).public_id)},
    )
    assert response.status_code == 200 and Response.objects.count() == 1


def test_other_pages_cap_bodies_too(client, db):
    response = client.post(reverse("signup"), {"username": "x" * (128 * 1024)})
    assert response.status_code == 413


def test_pages_send_a_strict_content_security_policy_and_a_permissions_policy(client, db):
    response = client.get(reverse("lessons:course"))
    policy = {
        part.split()[0]: part.split()[1:] for part in response["Content-Security-Policy"].split(";") if part.strip()
    }
    assert policy["default-src"] == policy["script-src"] == policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]


def test_pages_carry_no_inline_script_or_style(client, learner, attempt):
    client.force_login(learner)
    for url in (reverse("lessons:course"), attempt.get_absolute_url(), reverse("quizzes:home"), reverse("login")):
        html = Client().get(url).content.decode() if url == reverse("login") else client.get(url).content.decode()
        assert "<script>" not in html and "<style" not in html and ' style="' not in html, url
