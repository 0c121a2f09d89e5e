"""Practice pages."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from lessons import selectors as lesson_selectors


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "quizzes/home.html", {"nav": "practice", "lessons": lesson_selectors.lesson_list()})


@require_GET
def lesson_practice(request: HttpRequest, slug: str) -> HttpResponse:
    lesson = lesson_selectors.lesson_get(slug=slug)
    return render(request, "quizzes/home.html", {"nav": "practice", "lessons": [lesson]})
