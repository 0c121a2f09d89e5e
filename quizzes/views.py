"""Practice pages: one question at a time with htmx (plain forms work too), scores and history."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.validators import slug_re
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import reswap, retarget

from lessons import selectors as lesson_selectors
from meshlearn.htmx import HtmxHttpRequest
from meshlearn.middleware import body_limit

from . import selectors, services
from .models import Attempt


@require_safe
def home(request: HtmxHttpRequest) -> HttpResponse:
    overview = selectors.practice_overview(user=request.user)
    return render(request, "quizzes/home.html", {"nav": "practice", **overview})


@require_safe
def lesson_practice(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    lesson = lesson_selectors.lesson_get(slug=slug)
    count = selectors.lesson_question_count(lesson=lesson)
    return render(request, "quizzes/lesson.html", {"nav": "practice", "lesson": lesson, "question_count": count})


@body_limit(4 * 1024)
@login_required
@require_POST
def attempt_start(request: HtmxHttpRequest) -> HttpResponse:
    kind = request.POST.get("kind", "")
    if kind not in Attempt.Kind.values:
        return HttpResponse("Unknown kind of practice. Choose one of the buttons on the practice page.", status=400)
    lesson = None
    if kind == Attempt.Kind.LESSON:
        slug = request.POST.get("lesson", "")
        if not slug_re.match(slug):  # e.g. a NUL byte, which PostgreSQL refuses with an error
            return HttpResponse("The practice form named no lesson. Start from a lesson's practice page.", status=400)
        lesson = lesson_selectors.lesson_get(slug=slug)
    try:
        attempt = services.attempt_start(user=request.user, kind=kind, lesson=lesson)
    except services.NothingToPractise as exc:
        messages.info(request, str(exc))
        return redirect("quizzes:home")
    return redirect(attempt)


@login_required
@require_safe
def attempt_detail(request: HtmxHttpRequest, attempt_id: int) -> HttpResponse:
    attempt = selectors.attempt_get(attempt_id=attempt_id, user=request.user)
    question_id = selectors.next_question_id(attempt=attempt)
    if question_id is None:
        return render(
            request, "quizzes/summary.html", {"nav": "practice", "summary": selectors.attempt_summary(attempt=attempt)}
        )
    view = selectors.question_view(attempt=attempt, question_id=question_id)
    return render(request, "quizzes/attempt.html", {"nav": "practice", "attempt": attempt, "view": view})


@body_limit(4 * 1024)  # a question id, an option id and the CSRF token
@login_required
@require_POST
def attempt_answer(request: HtmxHttpRequest, attempt_id: int) -> HttpResponse:
    attempt = selectors.attempt_get(attempt_id=attempt_id, user=request.user)
    try:
        question_id = int(request.POST.get("question", ""))
    except ValueError:
        return _bad_answer(
            request, "The form did not say which question you answered. Reload the page and try again.", attempt
        )
    if not request.POST.get("option"):
        return _bad_answer(request, "Pick one of the options before checking your answer.", attempt)
    try:
        submission = services.response_submit(
            attempt=attempt, question_id=question_id, option_public_id=request.POST["option"]
        )
    except services.InvalidAnswer as exc:
        return _bad_answer(request, str(exc), attempt)
    result = selectors.result_view(response=submission.response, attempt=attempt, finished=submission.finished)
    context = {"nav": "practice", "attempt": attempt, "result": result}
    if request.htmx:
        return render(request, "quizzes/attempt.html#result", context)
    return render(request, "quizzes/attempt.html", context)


@login_required
@require_safe
def response_detail(request: HtmxHttpRequest, attempt_id: int, question_id: int) -> HttpResponse:
    """A past answer with its solution, reopened later (from the score page or after a reload)."""
    attempt = selectors.attempt_get(attempt_id=attempt_id, user=request.user)
    response = selectors.response_get(attempt=attempt, question_id=question_id)
    result = selectors.result_view(response=response, attempt=attempt, finished=attempt.finished_at is not None)
    return render(request, "quizzes/attempt.html", {"nav": "practice", "attempt": attempt, "result": result})


def _bad_answer(request: HtmxHttpRequest, message: str, attempt: Attempt) -> HttpResponse:
    """400 with a message that says what to do; htmx swaps it into the form's error slot."""
    if request.htmx:
        response = render(request, "quizzes/attempt.html#answer-error", {"message": message}, status=400)
        return reswap(retarget(response, "#answer-error"), "outerHTML")
    return render(
        request, "quizzes/answer_error.html", {"nav": "practice", "message": message, "attempt": attempt}, status=400
    )


@login_required
@require_safe
def history(request: HtmxHttpRequest) -> HttpResponse:
    return render(
        request, "quizzes/history.html", {"nav": "practice", "attempts": selectors.attempt_history(user=request.user)}
    )
