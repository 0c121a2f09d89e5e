"""Reads for lessons: the course outline with a learner's progress, and one lesson."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.shortcuts import get_object_or_404

from meshlearn.progress import ProgressCounts

from .models import Lesson, LessonCompletion, LessonVisit


@dataclass(frozen=True)
class LessonProgress:
    lesson: Lesson
    completed: bool


@dataclass(frozen=True)
class CourseOverview(ProgressCounts):
    items: list[LessonProgress]
    continue_lesson: Lesson | None


def lesson_list() -> QuerySet[Lesson]:
    return Lesson.objects.filter(published=True).defer("body_markdown", "body_html")


def course_overview(*, user: AbstractBaseUser | AnonymousUser) -> CourseOverview:
    """The outline in order, what this learner completed, and where to continue (3 queries)."""
    lessons = list(lesson_list())
    done: set[int] = set()
    continue_lesson = None
    if user.is_authenticated:
        done = set(LessonCompletion.objects.filter(user=user).values_list("lesson_id", flat=True))
        visit = LessonVisit.objects.filter(user=user).values_list("lesson_id", flat=True).first()
        by_id = {lesson.id: lesson for lesson in lessons}
        # Continue with the last lesson opened unless it is done; then the first one not done.
        if visit in by_id and visit not in done:
            continue_lesson = by_id[visit]
        else:
            continue_lesson = next((lesson for lesson in lessons if lesson.id not in done), None)
    items = [LessonProgress(lesson=lesson, completed=lesson.id in done) for lesson in lessons]
    return CourseOverview(items=items, continue_lesson=continue_lesson)


def lesson_get(*, slug: str, include_drafts: bool = False) -> Lesson:
    """A published lesson; staff may also open drafts to preview them."""
    lessons = Lesson.objects.all() if include_drafts else Lesson.objects.filter(published=True)
    return get_object_or_404(lessons, slug=slug)


def lesson_neighbours(*, lesson: Lesson) -> tuple[Lesson | None, Lesson | None]:
    """The lessons just before and after this one in course order (one query)."""
    ordered = list(lesson_list().only("slug", "title", "order"))
    index = next((i for i, item in enumerate(ordered) if item.id == lesson.id), None)
    if index is None:
        return None, None
    previous = ordered[index - 1] if index > 0 else None
    following = ordered[index + 1] if index + 1 < len(ordered) else None
    return previous, following


@dataclass(frozen=True)
class LessonReading:
    lesson: Lesson
    completed: bool
    last_visited_id: int | None  # the lesson this reader opened last, before this one


def lesson_reading(*, slug: str, user: AbstractBaseUser | AnonymousUser) -> LessonReading:
    """A lesson with what the page needs about its reader, in one query: whether they completed it
    and which lesson they opened last (drafts only for staff, who preview them)."""
    lessons = Lesson.objects.all() if user.is_staff else Lesson.objects.filter(published=True)
    if not user.is_authenticated:
        return LessonReading(lesson=get_object_or_404(lessons, slug=slug), completed=False, last_visited_id=None)
    lesson = get_object_or_404(
        lessons.annotate(
            reader_completed=Exists(LessonCompletion.objects.filter(user=user, lesson=OuterRef("pk"))),
            reader_last_visited_id=Subquery(LessonVisit.objects.filter(user=user).values("lesson_id")[:1]),
        ),
        slug=slug,
    )
    return LessonReading(
        lesson=lesson, completed=lesson.reader_completed, last_visited_id=lesson.reader_last_visited_id
    )
