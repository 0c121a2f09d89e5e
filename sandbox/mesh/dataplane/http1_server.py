"""The HTTP/1.1 server side: a bounded listener whose connections run one handler task per request."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from sandbox.mesh.config.model import Request, Response
from sandbox.mesh.dataplane.http1_parser import (
    EXPECT_CONTINUE,
    MAX_HEADER_BYTES,
    NEED_DATA,
    ProtocolError,
    RequestParser,
)
from sandbox.mesh.dataplane.http1_wire import (
    CONTINUE,
    encode_response,
    wants_close,
)
from sandbox.mesh.dataplane.listener import Listener, ListenerLimits, Slot

# --------------------------------------------------------------------------- server side

RequestHandler = Callable[[Request, "ServerConnection"], Awaitable[Response]]


class ServerConnection(asyncio.Protocol):
    """One accepted connection: parse requests, run the handler for each in turn, write the answers.

    Its listener slot says what it waits for: a fresh connection or a started request must be
    complete within `limits.read_timeout` (else 408 and close), a keep-alive connection between
    requests is closed after `limits.idle_timeout`; while a request is in flight neither applies.
    `peer` is free for the owner (the sidecar stores the caller's SPIFFE ID there in `on_open`).
    """

    def __init__(
        self,
        handle: RequestHandler,
        *,
        slot: Slot | None = None,
        limits: ListenerLimits | None = None,
        on_open: Callable[[ServerConnection], None] | None = None,
        on_close: Callable[[ServerConnection, Exception | None], None] | None = None,
    ) -> None:
        self.handle = handle
        self.slot = slot
        self._limits = limits or ListenerLimits()
        self.on_open = on_open
        self.on_close = on_close
        self.parser = RequestParser()
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.task: asyncio.Task | None = None
        self._reading_request = False  # bytes of a request arrived, the request is not complete yet
        self._read_paused = False
        self._write_paused: asyncio.Future | None = None
        self._closed = False

    @property
    def limits(self) -> ListenerLimits:
        """The listener's limits as they are now (they can be changed while connections are open)."""
        return self.slot.listener.limits if self.slot is not None else self._limits

    def get_extra_info(self, name: str, default=None):
        return self.transport.get_extra_info(name, default)

    # ------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._tls = transport.get_extra_info("sslcontext") is not None
        if self.slot is not None:
            if self.slot.released:  # evicted or timed out while the connection was being set up
                self._closed = True
                transport.abort()
                return
            self.slot.expire = self._expire
            self.slot.wait(self.limits.read_timeout)  # the first request is due now
        if self.on_open is not None:
            self.on_open(self)

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        if self.task is None:
            self._advance()
        elif self.parser.buffered > MAX_HEADER_BYTES and not self._read_paused:
            # Pipelined requests pile up behind a slow handler: let TCP push back instead of buffering.
            self._read_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.parser.feed_eof()
        if self.task is None:
            self._advance()
        # A response in flight is still written and we close after it (TLS has no half-close: it closes now).
        return not self._tls

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self.task is not None and not self.task.done():
            self.task.cancel()  # the caller is gone (Envoy's DC): stop working for it
        if self._write_paused is not None and not self._write_paused.done():
            self._write_paused.set_result(None)
        if self.slot is not None:
            self.slot.release()
        if self.on_close is not None:
            self.on_close(self, exc)

    def pause_writing(self) -> None:
        if self._write_paused is None or self._write_paused.done():
            self._write_paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._write_paused is not None and not self._write_paused.done():
            self._write_paused.set_result(None)

    # ------------------------------------------------------------------ requests

    def _advance(self) -> None:
        """Take the next complete request from the buffer, if there is one, and start answering it."""
        parser = self.parser
        while not self._closed:
            try:
                event = parser.next_event()
            except ProtocolError as exc:
                self._refuse(exc)
                return
            if event is NEED_DATA:
                if parser.idle and parser._eof:
                    self.transport.close()  # the client closed between requests
                elif not self._reading_request and parser.buffered:
                    self._reading_request = True
                    if self.slot is not None:
                        self.slot.wait(self.limits.read_timeout)
                return
            if event is EXPECT_CONTINUE:
                self.transport.write(CONTINUE)
                continue
            self._reading_request = False
            if self.slot is not None:
                self.slot.busy()
            self.task = asyncio.get_running_loop().create_task(self._respond(event))
            return

    async def _respond(self, request: Request) -> None:
        try:
            response = await self.handle(request, self)
        except Exception as exc:  # noqa: BLE001 - a bug in a handler: answer, close, and say what happened
            asyncio.get_running_loop().call_exception_handler(
                {"message": "HTTP handler failed", "exception": exc, "protocol": self}
            )
            response = Response(500, {"connection": "close"}, b"internal error\n")
        if self._closed:
            return
        keep = not wants_close(request.headers) and not wants_close(response.headers) and not self.parser._eof
        self.transport.write(encode_response(response, keep_alive=keep))
        if not keep:
            self.transport.close()
            return
        if self._write_paused is not None and not self._write_paused.done():
            await self._write_paused  # the client is not reading: answer nothing more until it does
        self.task = None
        if self._closed:
            return
        if self.slot is not None:
            self.slot.wait(self.limits.idle_timeout)
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()
        if self.parser.buffered or self.parser._eof:
            self._advance()

    def _refuse(self, exc: ProtocolError) -> None:
        self.transport.write(encode_response(Response(exc.status, body=f"{exc}\n".encode()), keep_alive=False))
        self.transport.close()
        self._closed = True

    def _expire(self, reason: str) -> None:
        """Called by the listener: a deadline passed, the slot was evicted, or the server stops."""
        if self._closed:
            return
        if reason == "timeout" and self._reading_request:
            self.transport.write(
                encode_response(Response(408, body=b"request not received in time\n"), keep_alive=False)
            )
        self._closed = True
        if reason == "timeout":
            self.transport.close()
            # close() lets the answer out; a peer that reads nothing must still not keep the socket.
            asyncio.get_running_loop().call_later(1.0, self.transport.abort)
        else:
            self.transport.abort()


class HttpServer:
    """An HTTP/1.1 listener on a given socket that can be stopped with all its connections."""

    def __init__(self, handle: RequestHandler, *, limits: ListenerLimits | None = None, name: str = "http") -> None:
        self.handle = handle
        self.limits = limits or ListenerLimits()
        self.name = name
        self.listener: Listener | None = None
        self.connections: set[ServerConnection] = set()
        self._setup: set[asyncio.Task] = set()
        self.port = 0

    async def start(self, sock: socket.socket) -> int:
        self.listener = Listener(sock, self._on_socket, self.limits, name=self.name)
        self.listener.start()
        self.port = sock.getsockname()[1]
        return self.port

    def healthy(self) -> tuple[bool, str]:
        return self.listener.healthy() if self.listener is not None else (False, f"{self.name} is not started")

    def _on_socket(self, conn: socket.socket, slot: Slot) -> None:
        task = asyncio.get_running_loop().create_task(self._open(conn, slot))
        self._setup.add(task)
        task.add_done_callback(self._setup.discard)
        # Evicted before the connection exists: stop setting it up (a task cancelled before it ran never
        # reached its own clean-up, so the socket is closed when the task is done).
        slot.expire = lambda _reason: task.cancel()
        task.add_done_callback(lambda done: conn.close() if done.cancelled() else None)

    async def _open(self, conn: socket.socket, slot: Slot) -> None:
        def protocol() -> ServerConnection:
            return ServerConnection(self.handle, slot=slot, on_open=self.connections.add, on_close=self._closed)

        try:
            await asyncio.get_running_loop().connect_accepted_socket(protocol, conn)
        except (OSError, asyncio.CancelledError):
            slot.release()
            conn.close()

    def _closed(self, connection: ServerConnection, _exc: Exception | None) -> None:
        self.connections.discard(connection)

    async def stop(self) -> None:
        if self.listener is None:
            return
        self.listener.close()
        self.listener = None
        for task in list(self._setup):
            task.cancel()
        tasks = [c.task for c in self.connections if c.task is not None]
        for connection in list(self.connections):
            connection.transport.abort()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
