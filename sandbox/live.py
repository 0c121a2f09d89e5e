"""The live view: one server-sent-events stream per experiment page, served by an async view under ASGI.

It follows the experiment's Redis event stream with redis.asyncio (XREAD BLOCK) and sends named events
(status, graph, metrics, requests, breaker, log, commands), each carrying a rendered HTML fragment that
htmx's SSE extension swaps into the element with the same `sse-swap` name. While the stream is open the
page counts as watching (the experiment is not idle). It ends with a `finished` event.

A stream must end when its page goes, or it would hold a Redis connection, keep the experiment "watched"
and cost CPU forever. Django cancels the response when uvicorn reports the disconnect, but that is not
enough: a cancellation that lands while the stream waits on a database read (sync_to_async) is swallowed by
asgiref, which waits for the thread and returns its result, so the stream ran on forever. So the stream
checks for the disconnect itself (recorded by the ASGI edge, meshlearn/edge.py) before and after each step;
each blocking read is short and raced against it; on a disconnect a watcher closes the Redis connection and
frees the stream's slot even if the generator is never resumed (Django closes only its own wrapper around
it); and a stream ends by itself after SANDBOX_STREAM_MAX_SECONDS (the browser reconnects). Streams are capped per
learner and per experiment (stream_slots.py): beyond the caps a 429 tells the page to poll.
"""

import asyncio
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from meshlearn.edge import DISCONNECTED
from sandbox.mesh.runtime.events import event_from_json

from . import selectors, streams
from .fragments import FRAGMENTS, experiment_facts, render_fragments
from .models import Experiment
from .state import state_from_stream
from .stream_slots import StreamsFull, StreamSlot

BLOCK_MS = 2000  # each XREAD waits at most this long, so a stream notices its end soon after it comes
STILL_HERE_SECONDS = 5  # a comment line at least this often keeps proxies from closing an idle stream
POLL_RETRY_SECONDS = 30  # beyond the caps: when the page may try the live stream again


@require_GET
async def experiment_stream(request: HttpRequest, experiment_id: int) -> HttpResponse:
    user = await request.auser()
    experiment = await sync_to_async(selectors.experiment_get)(experiment_id=experiment_id, user=user)
    if not experiment.is_active:
        # It ended between the page and this stream (a stop, say): say so, instead of a 404 the browser retries.
        content = _ended(experiment)
    else:
        live = LiveStream(experiment, user_id=user.pk, disconnected=getattr(request, "scope", {}).get(DISCONNECTED))
        try:
            await live.open()
        except StreamsFull as exc:
            response = HttpResponse(str(exc), status=429, content_type="text/plain; charset=utf-8")
            response["Retry-After"] = str(POLL_RETRY_SECONDS)
            return response
        content = live.events()
    response = StreamingHttpResponse(content, content_type="text/event-stream")
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
    return sse_message("finished", render_to_string("sandbox/partials/finished.html", {"reason": reason, "url": url}))


async def _ended(experiment: Experiment):
    yield _finished_message(experiment.end_reason or experiment.status, experiment.get_absolute_url())


class LiveStream:
    """One page's stream: its Redis connection, its slot, and the watcher that frees both when the client goes."""

    def __init__(self, experiment: Experiment, *, user_id: int, disconnected: asyncio.Event | None) -> None:
        self.experiment = experiment
        self.user_id = user_id
        # Without the ASGI edge (the test client) nothing reports a disconnect: an event never set.
        self.disconnected = disconnected if disconnected is not None else asyncio.Event()
        self.slot: StreamSlot | None = None
        self.redis = None
        self.watcher: asyncio.Task | None = None
        self.closed = False

    async def open(self) -> None:
        """Take a slot (raises StreamsFull). Its own short-lived connection: the stream may be read on another
        event loop than the view's (the test client does), and a connection belongs to one loop."""
        redis = streams.async_client()
        try:
            slot = StreamSlot(redis, user_id=self.user_id, experiment_id=self.experiment.pk)
            await slot.acquire()
        finally:
            await redis.aclose()
        self.slot = slot

    async def _start(self) -> None:
        self.redis = streams.async_client()
        self.slot.redis = self.redis
        self.watcher = asyncio.ensure_future(self._close_when_gone())

    async def _close_when_gone(self) -> None:
        await self.disconnected.wait()
        await self.close()

    async def close(self) -> None:
        """Idempotent: free the slot and close the connection (the first caller does it, at once)."""
        if self.closed:
            return
        self.closed = True
        if self.watcher is not None and self.watcher is not asyncio.current_task():
            self.watcher.cancel()
        if self.redis is None:
            return
        try:
            if self.slot is not None:
                await self.slot.release()
        except Exception:  # noqa: BLE001  (Redis gone: the lease runs out by itself)
            pass
        finally:
            await self.redis.aclose()

    async def _read(self, key: str, last_id: str):
        """XREAD BLOCK raced against the client's disconnect; None when the client went."""
        read = asyncio.ensure_future(self.redis.xread({key: last_id}, block=BLOCK_MS, count=200))
        gone = asyncio.ensure_future(self.disconnected.wait())
        try:
            done, _ = await asyncio.wait({read, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not read.done():
                read.cancel()  # the connection is closed right after, with whatever reply it still owed
        if read not in done:
            return None
        return read.result()

    async def events(self):
        experiment = self.experiment
        key = streams.events_key(experiment.pk)
        ends_at = time.monotonic() + settings.SANDBOX_STREAM_MAX_SECONDS
        try:
            await self._start()
            await self.redis.set(streams.viewer_key(experiment.pk), "1", ex=settings.SANDBOX_VIEWER_TTL)
            entries = list(reversed(await self.redis.xrevrange(key, count=selectors.STREAM_ENTRIES_READ)))
            notable = await sync_to_async(selectors.experiment_notable)(experiment=experiment)
            state = state_from_stream(entries, notable=notable)
            facts, commands, queue = await sync_to_async(_facts_and_commands)(experiment.pk)
            last_id = entries[-1][0] if entries else "0-0"
            changed = set(FRAGMENTS)
            quiet_since = time.monotonic()
            yield "retry: 2000\n\n"
            while not self.closed and not self.disconnected.is_set() and time.monotonic() < ends_at:
                if changed:
                    for name, html in render_fragments(
                        changed, facts=facts, state=state, commands=commands, queue=queue
                    ).items():
                        yield sse_message(name, html)
                    quiet_since = time.monotonic()
                if state.finished is not None:
                    yield _finished_message(state.finished.reason, facts["url"])
                    return
                if self.closed or self.disconnected.is_set():
                    return
                await self.redis.set(streams.viewer_key(experiment.pk), "1", ex=settings.SANDBOX_VIEWER_TTL)
                await self.slot.renew()
                reply = await self._read(key, last_id)
                if reply is None and self.disconnected.is_set():
                    return
                changed = set()
                if not reply:
                    if time.monotonic() - quiet_since >= STILL_HERE_SECONDS:
                        yield ": still here\n\n"
                        quiet_since = time.monotonic()
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
            await self.close()
