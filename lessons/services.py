"""Writes for lessons: loading content files, rendering bodies, recording progress."""

from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from .content_files import LessonSpec, parse_lesson_directory
from .models import Lesson, LessonCompletion, LessonVisit
from .rendering import render_markdown


@dataclass
class LoadReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


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
    report = LoadReport()
    with transaction.atomic():
        existing = {lesson.slug: lesson for lesson in Lesson.objects.filter(slug__in=[s.slug for s in specs])}
        for spec in specs:
            lesson = existing.get(spec.slug)
            if lesson is not None and lesson.source_hash == spec.source_hash:
                report.unchanged += 1
                continue
            if lesson is None:
                lesson = Lesson(slug=spec.slug)
                report.created += 1
            else:
                report.updated += 1
            for field in ("title", "order", "summary", "minutes", "objectives", "body_markdown", "source_path", "source_hash"):
                setattr(lesson, field, getattr(spec, field))
            lesson_save(lesson=lesson)
    return report


def lesson_complete(*, user: AbstractBaseUser, lesson: Lesson) -> LessonCompletion:
    completion, _ = LessonCompletion.objects.get_or_create(user=user, lesson=lesson)
    return completion


def lesson_uncomplete(*, user: AbstractBaseUser, lesson: Lesson) -> None:
    LessonCompletion.objects.filter(user=user, lesson=lesson).delete()


def lesson_visit(*, user: AbstractBaseUser, lesson: Lesson) -> None:
    """Remember the lesson a learner opened last (one UPDATE on every visit after the first)."""
    if not LessonVisit.objects.filter(user=user).update(lesson=lesson, visited_at=timezone.now()):
        LessonVisit.objects.get_or_create(user=user, defaults={"lesson": lesson})
