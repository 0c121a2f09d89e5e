"""HTTP/1.1 for the mesh on asyncio protocols: a bounded server and a keep-alive client pool.

Bytes are parsed by the sans-IO parsers of http1_parser (strict RFC 9112 framing); this module only
moves them. A server connection is an asyncio.Protocol that feeds its parser and runs one handler
task per request (pipelined requests wait their turn); a client connection is a Protocol whose
parser completes a future per response. No stream reader sits between the socket and the parser:
each hop handles a request in one pass over its bytes. Content-Length bodies both ways; chunked
request bodies are refused with 501 and chunked responses are read whole. Every listener is a
listener.Listener: capped, with read and idle timeouts, and able to survive a failed accept.
"""

from __future__ import annotations

import asyncio
import collections
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable

from sandbox.mesh.config.model import Request, Response, UpstreamError
from sandbox.mesh.dataplane.handshake_backoff import HandshakeBackoff
from sandbox.mesh.dataplane.http1_parser import (
    EXPECT_CONTINUE,
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    NEED_DATA,
    ProtocolError,
    RequestParser,
    ResponseParser,
)
from sandbox.mesh.dataplane.listener import Listener, ListenerLimits, Slot

__all__ = ["MAX_BODY_BYTES", "MAX_HEADER_BYTES", "ListenerLimits", "ProtocolError", "Request", "Response"]

REASONS = {
    100: "Continue",
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Content Too Large",
    417: "Expectation Failed",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
POOL_IDLE_SECONDS = 30.0  # below the servers' idle timeout, so a pooled connection is not closed under us


IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

# Hop-by-hop headers a proxy must not forward (RFC 9110 7.6.1), plus the length it recomputes and the
# expectation it met itself (a client asking for 100 Continue got it from this hop).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "expect",
    }
)


def encode_request(request: Request, host: str) -> bytes:
    lines = [f"{request.method} {request.path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {len(request.body)}\r\n"]
    for name, value in request.headers.items():
        if name not in HOP_BY_HOP and name != "host":
            lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + request.body


def encode_response(response: Response, *, keep_alive: bool = True) -> bytes:
    reason = REASONS.get(response.status, "Unknown")
    lines = [f"HTTP/1.1 {response.status} {reason}\r\ncontent-length: {len(response.body)}\r\n"]
    for name, value in response.headers.items():
        if name not in HOP_BY_HOP:
            lines.append(f"{name}: {value}\r\n")
    if not keep_alive:
        lines.append("connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + response.body


def wants_close(headers: dict[str, str]) -> bool:
    value = headers.get("connection")
    return value is not None and "close" in (token.strip() for token in value.lower().split(","))


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


# --------------------------------------------------------------------------- client side


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


ConnectHook = Callable[[Connection], None]  # raises to refuse a connection (e.g. wrong peer SPIFFE ID)


class ConnectionPool:
    """Keep-alive connections to one host:port, created on demand, reused when idle.

    Made to hold up when the machine is saturated, where a handshake (TLS above all) is the dearest thing a
    request can ask for and a reconnect storm turns overload into a collapse:

    - A request that finds no idle connection waits in line for one: a connection given back by another
      request, or a new one. New connections are made in the background, at most `max_connecting` at once
      and only as many as requests wait, so a burst shares the handshakes in flight instead of starting one
      each; a handshake whose requester gave up still completes and serves the next in line.
    - A handshake that timed out, or an endpoint that refused the connection, backs off (handshake_backoff:
      exponential with jitter, small cap) before the next handshake to this endpoint. Meanwhile the requests
      in line keep waiting for a connection in use to come back; with none open there is nothing to wait
      for, and they fail at once with the failure's own reason.
    - With `drain_timeout`, a request that times out (or is cancelled) leaves its connection to read the
      late response and throw it away, then come back to the pool: a healthy connection is not traded for a
      new handshake. At most `max_draining` drain at once; past that, or past the timeout, it is closed.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        on_connect: ConnectHook | None = None,
        connect_timeout: float = 2.0,
        max_idle: int = 256,
        handshake_slots: asyncio.Semaphore | None = None,
        max_connecting: int = 2,
        drain_timeout: float = 0.0,
        max_draining: int = 32,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.on_connect = on_connect
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        # Shared by a sidecar's pools: TLS handshakes take turns, and the wait counts in the connect timeout.
        self.handshake_slots = handshake_slots if ssl_context is not None else None
        self.max_connecting = max(1, max_connecting)
        self.drain_timeout = drain_timeout
        self.max_draining = max_draining
        self.backoff = HandshakeBackoff()
        self.idle: list[Connection] = []
        self.open_count = 0  # open connections: idle, in use or draining
        self.handshakes = 0  # connects started (with their TLS handshake when TLS), failed ones included
        self.closed = False
        self._rng = rng or random.Random()
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._connecting = 0
        self._connect_tasks: set[asyncio.Task] = set()
        self._draining: set[Connection] = set()
        self._wakeup: asyncio.TimerHandle | None = None
        self._last_error: UpstreamError | None = None

    # ------------------------------------------------------------------ making connections

    async def _connect(self) -> Connection:
        """Open one connection, or raise _ConnectFailed saying whether the endpoint should be backed off.

        Only a handshake that ran out of time, or an endpoint that refused or could not be reached, backs
        off: that is what a saturated or absent endpoint looks like, and trying again at once is the storm.
        A TLS refusal (an expired certificate, an unknown CA, a close during the handshake) comes fast from a
        peer that keeps up: the next request tries again, so both ends show the reason for each.
        """
        started = []
        try:
            _transport, conn = await asyncio.wait_for(self._open(started), self.connect_timeout)
        except TimeoutError as exc:
            raise _ConnectFailed(UpstreamError("UF", "connect timeout", "connect-failure"), bool(started)) from exc
        except ssl.SSLError as exc:
            raise _ConnectFailed(TlsConnectError(exc), False) from exc
        except (ConnectionError, OSError) as exc:
            error = UpstreamError("UF", f"connection failure: {exc.strerror or exc}", "connect-failure")
            raise _ConnectFailed(error, True) from exc
        if self.on_connect is not None:
            try:
                self.on_connect(conn)
            except UpstreamError as exc:
                conn.close()
                raise _ConnectFailed(exc, False) from exc
            except Exception as exc:  # noqa: BLE001 - e.g. the peer closed just as the handshake ended
                conn.close()
                raise _ConnectFailed(
                    UpstreamError("UF", f"connection failure: {exc}", "connect-failure"), False
                ) from exc
        self.open_count += 1
        return conn

    async def _open(self, started: list) -> tuple[asyncio.BaseTransport, Connection]:
        loop = asyncio.get_running_loop()
        if self.handshake_slots is None:
            started.append(True)
            self.handshakes += 1
            return await loop.create_connection(
                Connection, self.host, self.port, ssl=self.ssl_context, server_hostname="" if self.ssl_context else None
            )
        async with self.handshake_slots:
            started.append(True)  # a wait for a turn is this sidecar's queue, not the endpoint failing
            self.handshakes += 1
            return await loop.create_connection(
                Connection, self.host, self.port, ssl=self.ssl_context, server_hostname=""
            )

    def _maybe_connect(self) -> None:
        """Start handshakes for the requests in line, within the bound and the backoff."""
        if self.closed:
            return
        wanted = min(self.max_connecting, sum(1 for waiter in self._waiters if not waiter.done()))
        while self._connecting < wanted:
            delay = self.backoff.remaining(time.monotonic())
            if delay > 0:
                if self._wakeup is None:
                    self._wakeup = asyncio.get_running_loop().call_later(delay, self._woken)
                return
            self._connecting += 1
            task = asyncio.get_running_loop().create_task(self._handshake())
            self._connect_tasks.add(task)  # the loop holds tasks weakly
            task.add_done_callback(self._connect_tasks.discard)

    def _woken(self) -> None:
        self._wakeup = None
        self._maybe_connect()

    async def _handshake(self) -> None:
        try:
            conn = await self._connect()
        except _ConnectFailed as failed:
            self._connecting -= 1
            self._handshake_failed(failed.error, backoff=failed.backoff)
        except Exception as exc:  # noqa: BLE001 - an unforeseen failure is still a failed connect, never a hang
            self._connecting -= 1
            self._handshake_failed(UpstreamError("UF", f"connection failure: {exc}", "connect-failure"), backoff=True)
        except BaseException:
            self._connecting -= 1  # cancelled: the pool is closing
            raise
        else:
            self._connecting -= 1
            self.backoff.succeeded()
            self._release(conn)
        self._maybe_connect()

    def _handshake_failed(self, error: UpstreamError, *, backoff: bool) -> None:
        self._last_error = error
        if backoff:
            self.backoff.failed(time.monotonic(), self._rng)
        if self.open_count == 0 and self._connecting == 0:
            # No connection will come back to the requests in line: they fail now, with this reason.
            self._fail_waiters(error)
            return
        # Connections in use will come back to the others in line, but the first one's request reports this
        # failure: every failed handshake shows (in the access log, in the TLS failure counts) as before.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(_again(error))
                return

    def _fail_waiters(self, error: UpstreamError) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(_again(error))

    # ------------------------------------------------------------------ lending connections

    def _take_idle(self) -> Connection | None:
        now = time.monotonic()
        while self.idle:
            conn = self.idle.pop()
            if not conn.usable() or now - conn.idle_since > POOL_IDLE_SECONDS:
                self._discard(conn)
                continue
            return conn
        return None

    async def _acquire(self) -> Connection:
        conn = self._take_idle()
        if conn is not None:
            return conn
        if self.closed:
            raise UpstreamError("UF", "connection pool closed", "connect-failure")
        if self._last_error is not None and self.open_count == 0 and self._connecting == 0:
            if self.backoff.remaining(time.monotonic()) > 0:
                # Backing off, and nothing open could come back: fail now, for the reason the last one failed.
                raise _again(self._last_error)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._maybe_connect()
        try:
            async with asyncio.timeout(self.connect_timeout):
                return await waiter
        except TimeoutError as exc:
            self._forget(waiter)
            raise UpstreamError("UF", "connect timeout", "connect-failure") from exc
        except BaseException:
            self._forget(waiter)
            raise

    def _forget(self, waiter: asyncio.Future) -> None:
        """A request left the line: a connection handed to it just then goes to the next one."""
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            self._release(waiter.result())

    def _release(self, conn: Connection) -> None:
        """A connection is free: to the first request in line, else to the idle list."""
        if self.closed or not conn.usable():
            self._discard(conn)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if len(self.idle) >= self.max_idle:
            self._discard(conn)
            return
        conn.idle_since = time.monotonic()
        self.idle.append(conn)

    def _drain(self, conn: Connection) -> None:
        if self.closed or not self.drain_timeout or len(self._draining) >= self.max_draining or not conn.usable():
            self._discard(conn)
            return
        self._draining.add(conn)

        def drained(conn: Connection, clean: bool) -> None:
            self._draining.discard(conn)
            if clean:
                self._release(conn)
            else:
                self._discard(conn)

        conn.drain(self.drain_timeout, drained)

    # ------------------------------------------------------------------ requests

    async def request(self, request: Request, host_header: str, *, timeout: float | None = None) -> Response:
        """Send one request and read its response; connection problems become UpstreamError."""
        data = encode_request(request, host_header)
        head = request.method == "HEAD"
        while True:
            conn = await self._acquire()
            reused = conn.uses > 0
            try:
                return await self._exchange(conn, data, head, timeout)
            except _StaleConnection as exc:
                # The peer closed a kept-alive connection, most likely before it read our request:
                # clients resend that on another connection, but only when sending twice is harmless
                # (RFC 9110 9.2.2). Otherwise, or on a fresh connection, the caller sees the reset.
                if not reused or request.method not in IDEMPOTENT_METHODS:
                    raise UpstreamError("UC", "upstream connection closed before the response", "reset") from exc

    async def _exchange(self, conn: Connection, data: bytes, head: bool, timeout: float | None) -> Response:
        try:
            response = await conn.exchange(data, head_request=head, timeout=timeout)
        except _StaleConnection:
            self._discard(conn)
            raise
        except TimeoutError:
            # Before OSError: since Python 3.11 a timeout is an OSError, and it is not a reset.
            self._drain(conn)
            raise
        except ssl.SSLError as exc:
            self._discard(conn)
            raise TlsConnectError(exc) from exc
        except (ConnectionError, OSError) as exc:
            self._discard(conn)
            raise UpstreamError("UC", f"upstream reset: {exc}", "reset") from exc
        except ProtocolError as exc:
            self._discard(conn)
            raise UpstreamError("UC", f"upstream protocol error: {exc}", "reset") from exc
        except BaseException:
            # Cancelled (a per-try or overall timeout, the caller gone): the answer is still on its way.
            self._drain(conn)
            raise
        if wants_close(response.headers):
            self._discard(conn)
        else:
            self._release(conn)
        return response

    def _discard(self, conn: Connection) -> None:
        self.open_count -= 1
        conn.close()
        self._maybe_connect()  # a request in line may now need a new connection

    def close(self) -> None:
        self.closed = True
        for conn in self.idle:
            conn.close()
        self.idle.clear()
        for conn in list(self._draining):
            conn.close()
        for task in list(self._connect_tasks):
            task.cancel()
        if self._wakeup is not None:
            self._wakeup.cancel()
            self._wakeup = None
        self._fail_waiters(UpstreamError("UF", "connection pool closed", "connect-failure"))


class _StaleConnection(Exception):
    pass


class _ConnectFailed(Exception):
    """A connect or handshake failed with `error`; `backoff` says whether the endpoint waits before the next."""

    def __init__(self, error: UpstreamError, backoff: bool) -> None:
        super().__init__(error.reason)
        self.error = error
        self.backoff = backoff


class TlsConnectError(UpstreamError):
    """The TLS handshake (or the peer identity check) with the upstream failed."""

    def __init__(self, exc: BaseException, reason: str | None = None) -> None:
        self.original = exc
        self.text = reason
        text = reason or str(exc)
        super().__init__("UF", f"TLS error: {text}", "connect-failure")


def _again(error: UpstreamError) -> UpstreamError:
    """A fresh copy of a shared connect failure for one more request (one exception object per raise)."""
    if isinstance(error, TlsConnectError):
        return TlsConnectError(error.original, error.text)
    return UpstreamError(error.flag, error.reason, error.retry_on)


async def simple_request(
    host: str,
    port: int,
    method: str = "GET",
    path: str = "/",
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    timeout: float = 5.0,
    ssl_context: ssl.SSLContext | None = None,
) -> Response:
    """One request on a fresh connection (admin endpoints, tests)."""
    pool = ConnectionPool(host, port, ssl_context=ssl_context, connect_timeout=timeout)
    headers = dict(headers or {})
    try:
        request = Request(method=method, path=path, headers=headers, body=body)
        return await asyncio.wait_for(pool.request(request, headers.get("host", f"{host}:{port}")), timeout)
    finally:
        pool.close()
