"""Lab pages (list, a lab with its prediction, buttons and live checks) and the error decoder. Thin: the work is
in services (writes) and selectors (reads)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import reswap, retarget

from meshlearn.htmx import HtmxHttpRequest
from meshlearn.middleware import body_limit
from quizzes.models import new_seed
from quizzes.services import InvalidAnswer
from sandbox.mesh.runtime.commands import describe, parse_command
from sandbox.selectors import topology_get

from . import selectors, services
from .decoder import decode

DECODER_FIELD_LIMIT = 20_000  # characters accepted from the form; the decoder reads the first 4,000


@require_safe
def lab_list(request: HtmxHttpRequest) -> HttpResponse:
    overview = selectors.lab_overview(user=request.user)
    return render(request, "labs/list.html", {"nav": "labs", "overview": overview})


def _lab_context(request: HtmxHttpRequest, lab, progress) -> dict:
    seed = progress.shuffle_seed if progress is not None else new_seed()
    status = services.lab_status_refresh(progress=progress) if progress is not None and progress.experiment_id else None
    options = selectors.prediction_options(lab=lab, progress=progress, seed=seed)
    return {
        "nav": "labs",
        "lab": lab,
        "progress": progress,
        "options": options,
        "chosen": next((option for option in options if option.chosen), None),
        "status": status,
        "live_url": _live_url(status),
    }


def _live_url(status) -> str:
    experiment = getattr(status, "experiment", None)
    if experiment is None:
        return ""
    try:
        return experiment.get_absolute_url()
    except NoReverseMatch:
        return ""


@require_safe
def lab_detail(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    lab = selectors.lab_get(slug=slug, include_drafts=request.user.is_staff)
    progress = selectors.lab_progress_get(user=request.user, lab=lab)
    return render(request, "labs/detail.html", _lab_context(request, lab, progress))


@body_limit(4 * 1024)  # a few ids and the CSRF token
@login_required
@require_POST
def lab_predict(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    lab = selectors.lab_get(slug=slug, include_drafts=request.user.is_staff)
    try:
        services.prediction_submit(user=request.user, lab=lab, option_public_id=request.POST.get("option", ""))
    except InvalidAnswer as exc:
        return _bad_request(request, str(exc), lab)
    progress = selectors.lab_progress_get(user=request.user, lab=lab)
    context = _lab_context(request, lab, progress)
    if request.htmx:
        return render(request, "labs/detail.html#lab-work", context)
    return redirect(lab)


@body_limit(4 * 1024)  # a few ids and the CSRF token
@login_required
@require_POST
def lab_start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    lab = selectors.lab_get(slug=slug, include_drafts=request.user.is_staff)
    try:
        progress = services.lab_start(user=request.user, lab=lab)
    except services.LabError as exc:
        return _bad_request(request, str(exc), lab)
    if request.htmx:
        return render(request, "labs/detail.html#lab-work", _lab_context(request, lab, progress))
    return redirect(lab)


@body_limit(4 * 1024)  # a few ids and the CSRF token
@login_required
@require_POST
def lab_press(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    lab = selectors.lab_get(slug=slug, include_drafts=request.user.is_staff)
    progress = selectors.lab_progress_get(user=request.user, lab=lab)
    try:
        if progress is None:
            raise services.LabError("Answer the prediction and start the lab first.")
        label = services.lab_action_send(
            progress=progress, step=_index(request.POST.get("step")), action=_index(request.POST.get("action"))
        )
    except services.LabError as exc:
        return _bad_request(request, str(exc), lab)
    message = f"Sent: {label}. The mesh answers within a second or two."
    if request.htmx:
        return render(request, "labs/detail.html#press-answer", {"message": message})
    messages.success(request, message)
    return redirect(lab)


@login_required
@require_safe
def lab_status(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    lab = selectors.lab_get(slug=slug, include_drafts=request.user.is_staff)
    progress = selectors.lab_progress_get(user=request.user, lab=lab)
    return render(request, "labs/detail.html#status", _lab_context(request, lab, progress))


def _index(raw: str | None) -> int:
    try:
        value = int(raw or "")
    except ValueError:
        raise services.LabError("That button is not part of this lab. Reload the page.") from None
    if not 0 <= value < 100:
        raise services.LabError("That button is not part of this lab. Reload the page.")
    return value


def _bad_request(request: HtmxHttpRequest, message: str, lab) -> HttpResponse:
    """400 with a message that says what to do; htmx swaps it into the page's message slot."""
    if request.htmx:
        response = render(request, "labs/detail.html#lab-error", {"message": message}, status=400)
        return reswap(retarget(response, "#lab-error"), "outerHTML")
    messages.error(request, message)
    return redirect(lab)


# --------------------------------------------------------------------------- the error decoder


@require_http_methods(["GET", "HEAD", "POST"])
def decoder(request: HtmxHttpRequest) -> HttpResponse:
    text = (request.POST.get("text") if request.method == "POST" else request.GET.get("q")) or ""
    text = text[:DECODER_FIELD_LIMIT]
    result = decode(text) if text.strip() else None
    labs = {}
    if result is not None and result.labs:
        labs = {lab.slug: lab for lab in selectors.lab_queryset().filter(slug__in=result.labs)}
    pair = topology_get("pair")
    meanings = [
        {
            "meaning": meaning,
            "lab": labs.get(meaning.lab),
            "action_words": describe(parse_command(meaning.action, pair)) if meaning.action else "",
        }
        for meaning in (result.meanings if result else [])
    ]
    context = {"nav": "decoder", "text": text, "result": result, "meanings": meanings, "sandbox_url": _sandbox_url()}
    if request.htmx:
        return render(request, "labs/decoder.html#decoded", context)
    return render(request, "labs/decoder.html", context)


def _sandbox_url() -> str:
    try:
        return reverse("sandbox:index")
    except NoReverseMatch:
        return ""
