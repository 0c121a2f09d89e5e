"""One outbound HTTP/1.1 keep-alive connection: an asyncio protocol whose parser completes a future per response."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sandbox.mesh.config.model import Response
from sandbox.mesh.dataplane.http1_parser import (
    NEED_DATA,
    ProtocolError,
    ResponseParser,
)
from sandbox.mesh.dataplane.http1_wire import (
    wants_close,
)


class _StaleConnection(Exception):
    """A kept-alive connection the server had closed before our request: the pool retries it once."""


class Connection(asyncio.Protocol):
    """One outbound keep-alive connection: send a request, get its response from the parser."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.ssl_object = None
        self.parser = ResponseParser()
        self.waiter: asyncio.Future | None = None
        self.received = False  # a byte of the current response arrived
        self.pending = False  # a request was sent and its response has not been read whole yet
        self.keep_alive = True  # the last response read did not ask to close
        self.uses = 0  # exchanges started on it (0: fresh from its handshake)
        self.closed = False
        self.idle_since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ssl_object = transport.get_extra_info("ssl_object")

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:
            self.closed = True  # bytes nobody asked for: this connection's framing cannot be trusted
            self.transport.abort()
            return
        self.received = True
        self.parser.feed(data)
        self._check()

    def eof_received(self) -> bool:
        self.parser.feed_eof()
        if self.waiter is not None:
            self._check()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if exc is not None:  # a reset or a TLS failure: the exchange failed with it
            waiter.set_exception(exc)
            return
        self.parser.feed_eof()
        self._check()  # a close ends a body delimited by it ...
        if not waiter.done():  # ... or leaves the response incomplete
            waiter.set_exception(
                _StaleConnection() if not self.received else ProtocolError("connection closed inside the response")
            )

    def _check(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            event = self.parser.next_event()
        except ProtocolError as exc:
            waiter.set_exception(exc)
            return
        if event is not NEED_DATA:
            self.pending = False
            self.keep_alive = not wants_close(event.headers)
            waiter.set_result(event)
        # An incomplete response at EOF is decided in connection_lost, which follows and may carry the reason
        # (a TLS alert arrives that way).

    def _timed_out(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(TimeoutError())

    async def exchange(self, data: bytes, *, head_request: bool, timeout: float | None) -> Response:
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        self.received = False
        self.pending = True
        self.uses += 1
        self.parser.head_request = head_request
        if timeout is not None:
            self._timer = loop.call_later(timeout, self._timed_out)
        try:
            self.transport.write(data)
            return await waiter
        finally:
            self.waiter = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def drain(self, seconds: float, done: Callable[[Connection, bool], None]) -> None:
        """Read the response of an exchange its caller gave up on, throw it away, then call `done(self, ok)`.

        `ok` is True when the connection is clean again (the late response came whole within `seconds` and
        did not ask to close). Called right where the exchange ended, before any byte can arrive unasked.
        """
        if not self.pending:  # the response had come whole just as the caller gave up
            done(self, self.keep_alive and self.usable())
            return
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        timer = loop.call_later(seconds, lambda: waiter.done() or waiter.set_exception(TimeoutError()))

        def finished(future: asyncio.Future) -> None:
            timer.cancel()
            self.waiter = None
            clean = not future.cancelled() and future.exception() is None
            done(self, clean and self.keep_alive and self.usable())

        waiter.add_done_callback(finished)
        self._check()  # the rest of the response may be buffered already

    def usable(self) -> bool:
        return not self.closed and not self.transport.is_closing() and not self.parser._eof

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
