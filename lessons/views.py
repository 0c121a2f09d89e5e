"""Course pages: the outline with progress, a lesson, and marking a lesson complete (htmx)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from meshlearn.htmx import HtmxHttpRequest
from meshlearn.middleware import body_limit

from . import selectors, services


@require_safe
def course(request: HtmxHttpRequest) -> HttpResponse:
    overview = selectors.course_overview(user=request.user)
    return render(request, "lessons/course.html", {"overview": overview})


@require_safe
def lesson_detail(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    reading = selectors.lesson_reading(slug=slug, user=request.user)
    if request.user.is_authenticated:
        services.lesson_visit(user=request.user, lesson=reading.lesson, last_lesson_id=reading.last_visited_id)
    previous, following = selectors.lesson_neighbours(lesson=reading.lesson)
    context = {"lesson": reading.lesson, "completed": reading.completed, "previous": previous, "next": following}
    return render(request, "lessons/lesson_detail.html", context)


@body_limit(4 * 1024)
@login_required
@require_POST
def lesson_mark(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    lesson = selectors.lesson_get(slug=slug)
    completed = request.POST.get("completed") != "0"
    if completed:
        services.lesson_complete(user=request.user, lesson=lesson)
    else:
        services.lesson_uncomplete(user=request.user, lesson=lesson)
    context = {"lesson": lesson, "completed": completed}
    if request.htmx:
        return render(request, "lessons/lesson_detail.html#completion", context)
    return redirect(lesson)
