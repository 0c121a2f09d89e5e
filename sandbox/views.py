"""Sandbox pages and htmx actions. Thin: services write, selectors read; the live stream is in live.py."""

import functools
import json
import logging

import redis
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh, HttpResponseStopPolling

from meshlearn.htmx import HtmxHttpRequest

from . import actions, selectors, services
from .fragments import FRAGMENTS, experiment_facts, render_fragments
from .models import TOPOLOGIES
from .state import ViewState

log = logging.getLogger(__name__)

UNAVAILABLE = "The sandbox's live channel is not answering right now. Reload this page in a few seconds."


def _redis_answering(view):
    """A page that reads the live state answers 503 with what to do when Redis is down, not a 500."""

    @functools.wraps(view)
    def wrapper(request: HtmxHttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except redis.RedisError as exc:
            log.warning("sandbox page %s: Redis did not answer: %s", request.path, exc)
            if request.htmx:
                return HttpResponse(UNAVAILABLE, status=503, content_type="text/plain")
            return render(request, "sandbox/unavailable.html", {"nav": "sandbox", "message": UNAVAILABLE}, status=503)

    return wrapper


@login_required
@require_GET
def index(request: HtmxHttpRequest) -> HttpResponse:
    listing = selectors.experiment_list(user=request.user)
    return render(request, "sandbox/index.html", {"nav": "sandbox", "topologies": TOPOLOGIES, **listing})


@login_required
@require_POST
def experiment_start(request: HtmxHttpRequest) -> HttpResponse:
    try:
        experiment = services.experiment_start(user=request.user, topology=request.POST.get("topology", ""))
    except services.SandboxError as exc:
        messages.error(request, str(exc))
        return redirect("sandbox:index")
    return redirect(experiment)


def _page_context(experiment, names=FRAGMENTS) -> dict:
    """The page's fragments, or only those named (a poll for one part renders that part alone)."""
    state = selectors.experiment_state(experiment=experiment)
    commands = selectors.experiment_commands(experiment=experiment) if "commands" in names else ()
    facts = experiment_facts(experiment)
    queue = selectors.queue_place(experiment=experiment)
    fragments = render_fragments(names, facts=facts, state=state, commands=commands, queue=queue)
    return {"experiment": experiment, "facts": facts, "fragments": fragments, "queue": queue}


@login_required
@require_GET
@_redis_answering
def experiment_detail(request: HtmxHttpRequest, experiment_id: int) -> HttpResponse:
    experiment = selectors.experiment_get(experiment_id=experiment_id, user=request.user)
    if experiment.is_active:
        services.viewer_present(experiment=experiment)
    topology = selectors.topology_get(experiment.topology)
    return render(
        request,
        "sandbox/experiment.html",
        {
            "nav": "sandbox",
            "actions": actions.actions_for(topology),
            **_page_context(experiment),
        },
    )


@login_required
@require_GET
@_redis_answering
def experiment_status(request: HtmxHttpRequest, experiment_id: int) -> HttpResponse:
    """Polled while queued: the place in the queue. Once a worker took it the live stream (already open)
    carries the rest, and 286 tells htmx to stop polling."""
    experiment = selectors.experiment_get(experiment_id=experiment_id, user=request.user)
    services.viewer_present(experiment=experiment)
    html = _page_context(experiment, {"status"})["fragments"]["status"]
    return HttpResponse(html) if experiment.status == experiment.Status.QUEUED else HttpResponseStopPolling(html)


@login_required
@require_GET
@_redis_answering
def experiment_live(request: HtmxHttpRequest, experiment_id: int) -> HttpResponse:
    """The polling fallback of the live stream: every fragment from the latest state, as JSON by name."""
    experiment = selectors.experiment_get(experiment_id=experiment_id, user=request.user)
    if experiment.is_active:
        services.viewer_present(experiment=experiment)
    part = request.GET.get("part", "")
    if part and part not in FRAGMENTS:
        # Plain text, never HTML: what the request sent must not come back as markup the page would run.
        # It is not echoed either; the answer names what is accepted.
        return HttpResponse(
            f"part: choose one of {', '.join(FRAGMENTS)}, or leave it out for all of them.",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    fragments = _page_context(experiment, {part} if part else FRAGMENTS)["fragments"]
    if part:
        return HttpResponse(fragments[part])
    # 286 once it ended: the polling page stops and reloads to the final numbers (htmx's stop-polling code).
    status = 200 if experiment.is_active else HttpResponseStopPolling.status_code
    return HttpResponse(json.dumps(fragments), content_type="application/json", status=status)


@login_required
@require_POST
def experiment_command(request: HtmxHttpRequest, experiment_id: int) -> HttpResponse:
    """Send one action of the panel. The answer is the learner's command list; a command the engine
    refuses later shows its reason there, and in the log."""
    experiment = selectors.experiment_get(experiment_id=experiment_id, user=request.user)
    action = actions.action_get(selectors.topology_get(experiment.topology), request.POST.get("action", ""))
    error = ""
    if action is None:
        error = "action: choose one of the buttons of the panel."
    else:
        try:
            services.command_send(experiment=experiment, command=action.command)
        except services.SandboxError as exc:
            error = str(exc)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(experiment)
    commands = selectors.experiment_commands(experiment=experiment)
    html = render_fragments({"commands"}, facts=experiment_facts(experiment), state=ViewState(), commands=commands)[
        "commands"
    ]
    if error:
        return HttpResponse(
            render_to_string("sandbox/partials/command_error.html", {"error": error}) + html, status=400
        )
    return HttpResponse(html)


@login_required
@require_POST
def experiment_stop(request: HtmxHttpRequest, experiment_id: int) -> HttpResponse:
    experiment = selectors.experiment_get(experiment_id=experiment_id, user=request.user)
    try:
        services.experiment_stop(experiment=experiment)
    except services.SandboxUnavailable as exc:
        if request.htmx:
            return HttpResponse(str(exc), status=503, content_type="text/plain")
        messages.error(request, str(exc))
    if request.htmx:
        return HttpResponseClientRefresh()
    return redirect(experiment)
