"""The HTTP/1.1 client side: keep-alive connections, the bounded pool per upstream, and one-shot requests."""

from __future__ import annotations

import asyncio
import collections
import random
import ssl
import time
from collections.abc import Callable

from sandbox.mesh.config.flags import Flag
from sandbox.mesh.config.layer_errors import ConnectFailure, UpstreamReset
from sandbox.mesh.config.model import Request, Response, UpstreamError
from sandbox.mesh.dataplane.handshake_backoff import HandshakeBackoff
from sandbox.mesh.dataplane.http1_connection import Connection, _StaleConnection
from sandbox.mesh.dataplane.http1_parser import (
    ProtocolError,
)
from sandbox.mesh.dataplane.http1_wire import (
    IDEMPOTENT_METHODS,
    POOL_IDLE_SECONDS,
    encode_request,
    wants_close,
)

# --------------------------------------------------------------------------- client side


ConnectHook = Callable[[Connection], None]  # raises to refuse a connection (e.g. wrong peer SPIFFE ID)


class ConnectionPool:
    """Keep-alive connections to one host:port, created on demand, reused when idle.

    Made to hold up when the machine is saturated, where a handshake (TLS above all) is the dearest thing a
    request can ask for and a reconnect storm turns overload into a collapse:

    - A request that finds no idle connection waits in line for one: a connection given back by another
      request, or a new one. New connections are made in the background, at most `max_connecting` at once
      and only as many as requests wait, so a burst shares the handshakes in flight instead of starting one
      each; a handshake whose requester gave up still completes and serves the next in line.
    - A handshake that timed out backs off (handshake_backoff:
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

        Only a handshake that ran out of time backs off: that is what a saturated endpoint looks like, and
        trying again at once is the storm. A refused connection costs the endpoint nothing (the kernel answers
        it), so the next request tries again and a restarted sidecar serves at once. A TLS refusal (an expired certificate, an unknown CA, a close during the handshake) comes fast from a
        peer that keeps up: the next request tries again, so both ends show the reason for each.
        """
        started = []
        try:
            _transport, conn = await asyncio.wait_for(self._open(started), self.connect_timeout)
        except TimeoutError as exc:
            raise _ConnectFailed(ConnectFailure("connect timeout"), bool(started)) from exc
        except ssl.SSLError as exc:
            raise _ConnectFailed(TlsConnectError(exc), False) from exc
        except (ConnectionError, OSError) as exc:
            error = ConnectFailure(f"connection failure: {exc.strerror or exc}")
            raise _ConnectFailed(error, False) from exc
        if self.on_connect is not None:
            try:
                self.on_connect(conn)
            except UpstreamError as exc:
                conn.close()
                raise _ConnectFailed(exc, False) from exc
            except Exception as exc:  # noqa: BLE001 - e.g. the peer closed just as the handshake ended
                conn.close()
                raise _ConnectFailed(ConnectFailure(f"connection failure: {exc}"), False) from exc
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
            self._handshake_failed(ConnectFailure(f"connection failure: {exc}"), backoff=True)
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
            raise ConnectFailure("connection pool closed")
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
            raise ConnectFailure("connect timeout") from exc
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
                    raise UpstreamReset("upstream connection closed before the response") from exc

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
            raise UpstreamReset(f"upstream reset: {exc}") from exc
        except ProtocolError as exc:
            self._discard(conn)
            raise UpstreamReset(f"upstream protocol error: {exc}") from exc
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
        self._fail_waiters(ConnectFailure("connection pool closed"))


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
        super().__init__(Flag.UF, f"TLS error: {text}", "connect-failure")


def _again(error: UpstreamError) -> UpstreamError:
    """A fresh copy of a shared connect failure for one more request (one exception object per raise)."""
    if isinstance(error, TlsConnectError):
        return TlsConnectError(error.original, error.text)
    if isinstance(error, ConnectFailure):
        return ConnectFailure(error.reason)
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
