"""Instructors (staff in the Instructors group, not superusers) author lessons in the admin."""

from django.urls import reverse

from lessons.models import Lesson


def test_instructor_is_not_a_superuser_but_can_open_the_lesson_admin(client, instructor, lesson):
    assert not instructor.is_superuser
    client.force_login(instructor)
    assert client.get(reverse("admin:lessons_lesson_changelist")).status_code == 200
    assert client.get(reverse("admin:lessons_lesson_change", args=[lesson.pk])).status_code == 200


def test_instructor_edit_renders_and_sanitises_the_body(client, instructor, lesson):
    client.force_login(instructor)
    response = client.post(
        reverse("admin:lessons_lesson_change", args=[lesson.pk]),
        {
            "title": "Edited title",
            "slug": lesson.slug,
            "order": 3,
            "published": "on",
            "minutes": 7,
            "summary": "s",
            "objectives": "Do a thing",
            "body_markdown": "New **bold** text <script>alert(1)</script>",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    lesson.refresh_from_db()
    assert lesson.title == "Edited title"
    assert "<strong>bold</strong>" in lesson.body_html and "<script" not in lesson.body_html
    assert "New <strong>bold</strong> text" in client.get(lesson.get_absolute_url()).content.decode()


def test_instructor_can_reorder_from_the_list(client, instructor):
    from tests.factories import LessonFactory

    first, second = LessonFactory(order=1), LessonFactory(order=2)
    client.force_login(instructor)
    data = {
        "form-TOTAL_FORMS": "2",
        "form-INITIAL_FORMS": "2",
        "_save": "Save",
        "form-0-id": str(first.pk),
        "form-0-order": "5",
        "form-0-published": "on",
        "form-1-id": str(second.pk),
        "form-1-order": "1",
        "form-1-published": "on",
    }
    response = client.post(reverse("admin:lessons_lesson_changelist"), data)
    assert response.status_code == 302
    assert list(Lesson.objects.values_list("pk", flat=True)) == [second.pk, first.pk]


def test_admin_preview_shows_the_rendered_body(client, instructor, lesson):
    client.force_login(instructor)
    html = client.get(reverse("admin:lessons_lesson_change", args=[lesson.pk])).content.decode()
    assert '<div class="lesson-preview"><h2 id="s-section">Section</h2>' in html


def test_learners_cannot_enter_the_admin(client, learner):
    client.force_login(learner)
    response = client.get(reverse("admin:lessons_lesson_changelist"))
    assert response.status_code == 302 and "login" in response.url


def test_instructors_cannot_edit_learners_progress(client, instructor):
    client.force_login(instructor)
    assert client.get(reverse("admin:lessons_lessoncompletion_add")).status_code == 403
