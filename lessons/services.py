"""Writes for lessons: loading content files, rendering bodies, recording progress."""

import logging
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db import OperationalError, transaction
from django.utils import timezone

from meshlearn.content import LoadReport, content_upsert
from meshlearn.db import atomic_with_short_lock_wait

from .content_files import LessonSpec, parse_lesson_directory
from .models import Lesson, LessonCompletion, LessonVisit
from .rendering import render_markdown

logger = logging.getLogger(__name__)

# "Continue where you left off" is a hint: a page never waits longer than this to record it.
VISIT_LOCK_WAIT_SECONDS = 0.2


def lesson_render(*, lesson: Lesson) -> None:
    lesson.body_html = render_markdown(lesson.body_markdown)


def lesson_save(*, lesson: Lesson) -> Lesson:
    """Save with a freshly rendered body: the only way lesson HTML is produced."""
    lesson_render(lesson=lesson)
    lesson.save()
    return lesson


def lessons_load(*, directory: Path) -> LoadReport:
    """Load every lesson file idempotently. Every file is parsed before anything is written, and
    the writes share one transaction, so a bad file leaves the database exactly as it was."""
    return lessons_write(specs=parse_lesson_directory(directory))


def lessons_write(*, specs: list[LessonSpec]) -> LoadReport:
    with transaction.atomic():
        return content_upsert(
            model=Lesson,
            specs=specs,
            key="slug",
            fields=("title", "order", "summary", "minutes", "objectives", "body_markdown", "source_path"),
            write=lambda lesson, spec: lesson_save(lesson=lesson),
        )


def lesson_complete(*, user: AbstractBaseUser, lesson: Lesson) -> LessonCompletion:
    completion, _ = LessonCompletion.objects.get_or_create(user=user, lesson=lesson)
    return completion


def lesson_uncomplete(*, user: AbstractBaseUser, lesson: Lesson) -> None:
    LessonCompletion.objects.filter(user=user, lesson=lesson).delete()


def lesson_visit(*, user: AbstractBaseUser, lesson: Lesson, last_lesson_id: int | None) -> None:
    """Remember the lesson a learner opened last, for "continue where you left off".

    Reading a page must not queue for the write lock: re-reading the lesson already remembered
    (`last_lesson_id`, read by the page) writes nothing, and a change waits at most
    VISIT_LOCK_WAIT_SECONDS for the lock; when the database is that busy the visit is skipped and
    the page is served all the same (the next page read records it)."""
    if last_lesson_id == lesson.id:
        return
    try:
        with atomic_with_short_lock_wait(seconds=VISIT_LOCK_WAIT_SECONDS):
            if not LessonVisit.objects.filter(user=user).update(lesson=lesson, visited_at=timezone.now()):
                LessonVisit.objects.get_or_create(user=user, defaults={"lesson": lesson})
    except OperationalError as exc:
        logger.info("visit of %s by user %s not recorded, the database is busy: %s", lesson.slug, user.pk, exc)
