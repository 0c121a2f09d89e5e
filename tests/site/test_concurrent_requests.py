"""Learners reading and answering at the same moment, through a running server (pytest-django's
live server, one thread per request) on whichever database the suite runs on: nobody gets an error,
and every answer is recorded once.

On SQLite a transaction takes the write lock when it begins (IMMEDIATE), so writers queue for it,
for a bounded time, instead of failing with "database is locked"; reading a page takes no write lock."""

import secrets
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from urllib.parse import urlencode, urlsplit

import pytest
from django.db import connection
from django.test import Client

from lessons.models import LessonVisit
from quizzes.models import Attempt, Option, Response
from quizzes.services import attempt_start
from tests.factories import LessonFactory, QuestionFactory, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CSRF_SECRET = secrets.token_hex(16)  # 32 characters: what the CSRF cookie holds


class Browser:
    """One learner's logged-in cookie jar, making requests over its own connection."""

    def __init__(self, live_server, user):
        client = Client()
        client.force_login(user)
        self.cookie = f"sessionid={client.cookies['sessionid'].value}; csrftoken={CSRF_SECRET}"
        self.host, self.port = urlsplit(live_server.url).hostname, urlsplit(live_server.url).port

    def request(self, method, path, form=None) -> tuple[int, str]:
        conn = HTTPConnection(self.host, self.port, timeout=60)
        headers = {"Cookie": self.cookie, "X-CSRFToken": CSRF_SECRET}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            conn.close()


def all_at_once(calls):
    """Run every call in its own thread, released together, and return their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def answer_form(attempt, question_id):
    option = Option.objects.filter(question_id=question_id).order_by("id").first()
    return {"question": question_id, "option": str(option.public_id)}


@pytest.fixture
def practice_set(db):
    lesson = LessonFactory(slug="together")
    for _ in range(10):
        QuestionFactory(lesson=lesson)
    return lesson


def test_learners_answering_at_the_same_moment_all_get_their_result(live_server, practice_set):
    learners = [UserFactory(username=f"class{n}") for n in range(6)]
    attempts = [attempt_start(user=user, kind=Attempt.Kind.LESSON, lesson=practice_set) for user in learners]
    browsers = [Browser(live_server, user) for user in learners]
    forms = [[answer_form(attempt, qid) for qid in attempt.question_ids] for attempt in attempts]
    for round_ in range(10):
        results = all_at_once(
            [
                (
                    lambda b=browser, a=attempt, f=form[round_]: b.request(
                        "POST", f"/practice/attempts/{a.pk}/answer/", f
                    )
                )
                for browser, attempt, form in zip(browsers, attempts, forms)
            ]
        )
        assert [status for status, _ in results] == [200] * len(learners), [body[:300] for _, body in results]
    assert Response.objects.count() == 6 * 10
    assert Attempt.objects.filter(finished_at__isnull=False).count() == 6


def test_the_same_answer_sent_from_two_tabs_at_once_is_recorded_once(live_server, practice_set):
    learner = UserFactory(username="two-tabs")
    attempt = attempt_start(user=learner, kind=Attempt.Kind.LESSON, lesson=practice_set)
    tabs = [Browser(live_server, learner), Browser(live_server, learner)]
    for question_id in attempt.question_ids:
        form = answer_form(attempt, question_id)
        results = all_at_once(
            [
                (lambda tab=tab, form=form: tab.request("POST", f"/practice/attempts/{attempt.pk}/answer/", form))
                for tab in tabs
            ]
        )
        assert [status for status, _ in results] == [200, 200], [body[:300] for _, body in results]
        assert Response.objects.filter(attempt=attempt, question_id=question_id).count() == 1
    attempt.refresh_from_db()
    assert attempt.finished_at is not None


def test_fifty_learners_reading_lessons_at_once_all_get_their_page_and_keep_their_place(live_server):
    lessons = [LessonFactory(slug=f"read-{n}") for n in range(3)]
    readers = [UserFactory(username=f"reader{n}") for n in range(50)]
    browsers = [Browser(live_server, user) for user in readers]
    for lesson in lessons:  # every round moves every reader's "continue" to another lesson
        results = all_at_once(
            [(lambda b=b, lesson=lesson: b.request("GET", lesson.get_absolute_url())) for b in browsers]
        )
        errors = {body[:300] for status, body in results if status != 200}
        assert [status for status, _ in results] == [200] * 50, errors
    # Each reader's place is kept unless the database was too busy for that hint at that moment:
    # then it is the lesson read just before. Nobody's place points anywhere else.
    places = dict(LessonVisit.objects.values_list("user__username", "lesson__slug"))
    assert set(places) == {user.username for user in readers}
    assert set(places.values()) <= {"read-1", "read-2"}
    assert list(places.values()).count("read-2") >= 1


@pytest.mark.sqlite
@pytest.mark.skipif(connection.vendor != "sqlite", reason="holds SQLite's file write lock from a second connection")
def test_a_lesson_page_is_served_while_another_connection_holds_the_write_lock(live_server):
    first, second = LessonFactory(slug="held-1"), LessonFactory(slug="held-2")
    learner = UserFactory(username="patient")
    browser = Browser(live_server, learner)
    assert browser.request("GET", first.get_absolute_url())[0] == 200
    holder = sqlite3.connect(connection.settings_dict["NAME"], timeout=30, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a long writer, e.g. an import
    try:
        status, body = browser.request("GET", second.get_absolute_url())
        assert status == 200, body[:300]
        assert status == 200 and second.title in body
        status, _ = browser.request("GET", second.get_absolute_url())
        assert status == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert LessonVisit.objects.get(user=learner).lesson == first  # the hint was skipped, not half-written
    assert browser.request("GET", second.get_absolute_url())[0] == 200
    assert LessonVisit.objects.get(user=learner).lesson == second
