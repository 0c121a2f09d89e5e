"""An admin import runs in a real Celery worker through the real Redis: progress, result, confirmation."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from meshlearn.celery import app
from quizzes.models import Question, QuestionImport
from tests.factories import LessonFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_until_finished(client, url, bound=60):
    """Poll the progress fragment as htmx does, until it stops asking to be polled."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
        if "hx-trigger" not in fragment:
            return fragment
        assert '<progress id="import-bar"' in fragment
        time.sleep(0.2)
    raise AssertionError(f"the import did not finish within {bound} s")


def test_a_large_import_runs_in_the_worker_and_reports_what_it_did(instructor):
    lesson = LessonFactory()
    questions = "\n".join(
        f"::q{n}:: Which proxy carries call {n}? {{=Sidecar #Right ~Database #No}}\n" for n in range(2000)
    )
    text = questions + "\n::tf:: The sky is blue. {T}\n"
    client = Client()
    client.force_login(instructor)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        upload = SimpleUploadedFile("many.gift", text.encode())
        response = client.post(
            reverse("admin:quizzes_question_import"), {"file": upload, "format": "gift", "lesson": lesson.pk}
        )
        assert response.status_code == 302
        page = client.get(response["Location"]).content.decode()
        assert "htmx" in page and 'hx-get="' in page  # the full page carries htmx and the polling fragment
        fragment = wait_until_finished(client, response["Location"])

    assert '<td id="count-created">2000</td>' in fragment
    assert "line 4001: true/false question “tf”" in fragment
    assert Question.objects.filter(lesson=lesson).count() == 2000
    assert QuestionImport.objects.get().status == QuestionImport.Status.DONE


def test_a_change_that_drops_feedback_is_applied_only_after_a_confirmation_with_csrf(instructor):
    lesson = LessonFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(instructor)

    def upload(content):
        form = client.get(reverse("admin:quizzes_question_import"))
        token = form.cookies["csrftoken"].value
        response = client.post(
            reverse("admin:quizzes_question_import"),
            {
                "file": SimpleUploadedFile("q.gift", content),
                "format": "gift",
                "lesson": lesson.pk,
                "csrfmiddlewaretoken": token,
            },
        )
        assert response.status_code == 302
        return response["Location"], token

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        url, _ = upload(b"::q:: Which? {=A #Right ~B #Wrong}")
        wait_until_finished(client, url)
        url, token = upload(b"::q:: Which? {=A ~B}")
        fragment = wait_until_finished(client, url)
        assert "q — this import drops the feedback of 2 options" in fragment
        assert Question.objects.get().options.get(text="A").feedback == "Right"

        confirm = reverse("admin:quizzes_question_import_confirm", args=[QuestionImport.objects.first().pk])
        assert client.post(confirm).status_code == 403  # no CSRF token: refused
        assert client.post(confirm, {"csrfmiddlewaretoken": token}).status_code == 302
        fragment = wait_until_finished(client, url)

    assert '<td id="count-updated">1</td>' in fragment
    assert Question.objects.get().options.get(text="A").feedback == ""
