"""Progress per learner: completing lessons, the course home, "continue where you left off"."""

import pytest
from django.test import Client
from django.urls import reverse

from lessons.models import LessonCompletion, LessonVisit
from tests.factories import LessonFactory


def test_anonymous_visitors_can_read_a_lesson(client, lesson):
    response = client.get(lesson.get_absolute_url())
    assert response.status_code == 200
    assert "Some text about sidecars." in response.content.decode()
    assert "Log in</a> to keep track" in response.content.decode()


def test_marking_complete_requires_login(client, lesson):
    response = client.post(reverse("lessons:mark", args=[lesson.slug]))
    assert response.status_code == 302 and reverse("login") in response.url
    assert not LessonCompletion.objects.exists()


def test_completing_a_lesson_shows_on_the_course_home(client, learner):
    first, second = LessonFactory(title="First"), LessonFactory(title="Second")
    client.force_login(learner)

    client.post(reverse("lessons:mark", args=[first.slug]), {"completed": "1"})
    page = client.get(reverse("lessons:course")).content.decode()

    assert "1 of 2</strong> lessons complete" in page
    assert 'aria-valuenow="50"' in page
    assert f"Continue where you left off: {second.title}" in page


def test_htmx_completion_returns_only_the_fragment(client, learner, lesson):
    client.force_login(learner)
    response = client.post(reverse("lessons:mark", args=[lesson.slug]), {"completed": "1"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.strip().startswith('<div id="completion"')
    assert "You completed this lesson." in html and "<html" not in html


def test_marking_not_complete_removes_the_completion(client, learner, lesson):
    client.force_login(learner)
    client.post(reverse("lessons:mark", args=[lesson.slug]), {"completed": "1"})
    client.post(reverse("lessons:mark", args=[lesson.slug]), {"completed": "0"})
    assert not LessonCompletion.objects.filter(user=learner).exists()


def test_completing_twice_records_one_completion(client, learner, lesson):
    client.force_login(learner)
    for _ in range(2):
        client.post(reverse("lessons:mark", args=[lesson.slug]), {"completed": "1"})
    assert LessonCompletion.objects.filter(user=learner, lesson=lesson).count() == 1


def test_progress_is_kept_per_learner(client, learner, other_learner, lesson):
    client.force_login(learner)
    client.post(reverse("lessons:mark", args=[lesson.slug]), {"completed": "1"})
    client.force_login(other_learner)
    page = client.get(reverse("lessons:course")).content.decode()
    assert "0 of 1</strong> lessons complete" in page


def test_continue_points_at_the_last_lesson_opened(client, learner):
    LessonFactory(title="One")
    two = LessonFactory(title="Two")
    client.force_login(learner)
    client.get(two.get_absolute_url())
    assert "Continue where you left off: Two" in client.get(reverse("lessons:course")).content.decode()


def test_writes_are_refused_without_a_csrf_token(learner, lesson):
    client = Client(enforce_csrf_checks=True)
    client.force_login(learner)
    response = client.post(reverse("lessons:mark", args=[lesson.slug]), {"completed": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert not LessonCompletion.objects.exists()


def test_pages_carry_the_csrf_header_for_htmx(client, lesson):
    html = client.get(lesson.get_absolute_url()).content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


def test_unpublished_lessons_are_hidden_from_learners_but_previewable_by_staff(client, learner, instructor):
    draft = LessonFactory(published=False)
    client.force_login(learner)
    assert client.get(draft.get_absolute_url()).status_code == 404
    client.force_login(instructor)
    assert "Draft: only staff" in client.get(draft.get_absolute_url()).content.decode()


def test_empty_course_explains_how_to_load_it(client, db):
    assert "load_course" in client.get(reverse("lessons:course")).content.decode()


def test_unknown_lesson_gets_the_friendly_404(client, db):
    response = client.get("/lessons/no-such-lesson/")
    assert response.status_code == 404
    assert "We could not find that page" in response.content.decode()


@pytest.mark.parametrize("count", [1, 6])
def test_course_home_uses_a_constant_number_of_queries(client, learner, django_assert_num_queries, count):
    for _ in range(count):
        LessonFactory()
    client.force_login(learner)
    # session + user, lessons, completions, last visit, labs, lab progress
    with django_assert_num_queries(7):
        client.get(reverse("lessons:course"))


@pytest.mark.parametrize("count", [1, 6])
def test_lesson_page_uses_a_constant_number_of_queries(client, learner, django_assert_num_queries, count):
    lessons = [LessonFactory() for _ in range(count)]
    client.force_login(learner)
    # session + user, lesson with its reader's completion and last visit, neighbours, the lesson's labs, lab progress:
    # re-reading writes nothing
    client.get(lessons[-1].get_absolute_url())  # first visit creates the row; measure the steady state
    with django_assert_num_queries(6):
        client.get(lessons[-1].get_absolute_url())


def test_reading_another_lesson_moves_the_visit_with_one_write_and_rereading_writes_nothing(client, learner):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first, second = LessonFactory(), LessonFactory()
    client.force_login(learner)
    client.get(first.get_absolute_url())

    def writes_while_reading(lesson):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(lesson.get_absolute_url()).status_code == 200
        return [q["sql"] for q in queries if q["sql"].split()[0].upper() in {"UPDATE", "INSERT", "DELETE"}]

    assert len(writes_while_reading(second)) == 1
    assert LessonVisit.objects.get(user=learner).lesson == second
    assert writes_while_reading(second) == []
