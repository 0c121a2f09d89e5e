"""The live view: one server-sent-events stream per experiment page, served by an async view under ASGI.

It follows the experiment's Redis event stream with redis.asyncio (XREAD BLOCK) and sends named events
(status, graph, metrics, requests, breaker, log, commands), each carrying a rendered HTML fragment that
htmx's SSE extension swaps into the element with the same `sse-swap` name. While the stream is open the
page counts as watching (the experiment is not idle). It ends with a `finished` event.
"""

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from django.utils.html import format_html
from django.views.decorators.http import require_GET

from sandbox.mesh.runtime.events import event_from_json

from . import selectors, streams
from .fragments import FRAGMENTS, experiment_facts, render_fragments
from .models import Experiment
from .state import state_from_stream

BLOCK_MS = 5000  # a comment line at least this often keeps proxies and the viewer key alive


@require_GET
async def experiment_stream(request: HttpRequest, experiment_id: int) -> StreamingHttpResponse:
    user = await request.auser()
    experiment = await sync_to_async(selectors.experiment_get)(experiment_id=experiment_id, user=user)
    response = StreamingHttpResponse(_stream(experiment), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a buffering proxy would hold the events back
    return response


def sse_message(name: str, html: str) -> str:
    """One named event; every line of the fragment becomes a `data:` line."""
    data = "\n".join(f"data: {line}" for line in html.splitlines() or [""])
    return f"event: {name}\n{data}\n\n"


def _facts_and_commands(experiment_id: int) -> tuple[dict, list, selectors.QueuePlace | None]:
    """The record's side of the fragments: its fields, the learner's commands and, while queued, the place in
    the queue (without it the status fragment would drop the place the page and its poll show)."""
    experiment = Experiment.objects.get(pk=experiment_id)
    return (
        experiment_facts(experiment),
        selectors.experiment_commands(experiment=experiment),
        selectors.queue_place(experiment=experiment),
    )


def _finished_message(reason: str, url: str) -> str:
    """Tells the page the experiment ended and reloads its main part, which then shows the final numbers."""
    return sse_message(
        "finished",
        format_html(
            '<p>The experiment ended: {}. <a href="{}">See the final numbers</a>.</p>'
            '<div hx-get="{}" hx-trigger="load delay:300ms" hx-select="#main" hx-target="#main" '
            'hx-swap="outerHTML"></div>',
            reason,
            url,
            url,
        ),
    )


async def _stream(experiment: Experiment):
    if not experiment.is_active:
        # It ended between the page and this stream (a stop, say): say so, instead of a 404 the browser retries.
        yield _finished_message(experiment.end_reason or experiment.status, experiment.get_absolute_url())
        return
    redis = streams.async_client()
    key = streams.events_key(experiment.pk)
    try:
        await redis.set(streams.viewer_key(experiment.pk), "1", ex=settings.SANDBOX_VIEWER_TTL)
        entries = list(reversed(await redis.xrevrange(key, count=selectors.STREAM_ENTRIES_READ)))
        notable = await sync_to_async(selectors.experiment_notable)(experiment=experiment)
        state = state_from_stream(entries, notable=notable)
        facts, commands, queue = await sync_to_async(_facts_and_commands)(experiment.pk)
        last_id = entries[-1][0] if entries else "0-0"
        changed = set(FRAGMENTS)
        yield "retry: 2000\n\n"
        while True:
            if changed:
                for name, html in render_fragments(
                    changed, facts=facts, state=state, commands=commands, queue=queue
                ).items():
                    yield sse_message(name, html)
            if state.finished is not None:
                yield _finished_message(state.finished.reason, facts["url"])
                return
            await redis.set(streams.viewer_key(experiment.pk), "1", ex=settings.SANDBOX_VIEWER_TTL)
            reply = await redis.xread({key: last_id}, block=BLOCK_MS, count=200)
            changed = set()
            if not reply:
                yield ": still here\n\n"
                continue
            for _stream_name, batch in reply:
                for entry_id, fields in batch:
                    last_id = entry_id
                    try:
                        event = event_from_json(streams.event_json(fields))
                    except ValueError:
                        continue
                    changed |= state.apply(event)
                    if event.kind in ("applied", "refused", "started", "finished"):
                        changed |= {"commands", "status"}
            if changed & {"commands", "status"}:
                # The worker wrote the record before the event: the outcome and status are there now.
                facts, commands, queue = await sync_to_async(_facts_and_commands)(experiment.pk)
    finally:
        await redis.aclose()
