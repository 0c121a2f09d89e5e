"""Circuit breaker layer: caps requests in flight to one destination and fails fast (503 UO) past it.

Envoy's model for HTTP/1.1: each request in flight holds one upstream connection; at most
`max_connections` of them, and at most `max_pending_requests` more may wait for a free
connection. A request that would exceed both is refused at once with flag UO. When only
one limit is set, the other takes Envoy's default of 1024.
"""

from __future__ import annotations

import asyncio
from collections import deque

from sandbox.mesh.config.layer_errors import BreakerOpen, BreakerState
from sandbox.mesh.config.model import CircuitBreakerPolicy, Handler, Request, Response

ENVOY_DEFAULT_LIMIT = 1024
OVERFLOW_BODY = b"upstream connect error or disconnect/reset before headers. reset reason: overflow"


class CircuitBreaker:
    """Counts requests holding a connection (`active`) and waiting for one (`pending`).

    No clock is needed: its state is the load right now. It is "open" while a new request
    would be refused, "closed" otherwise, so it closes by itself once the load drains.
    """

    def __init__(self, policy: CircuitBreakerPolicy) -> None:
        self.active = 0
        self.rejected = 0  # requests refused with UO since creation
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.max_connections = ENVOY_DEFAULT_LIMIT
        self.max_pending_requests = ENVOY_DEFAULT_LIMIT
        self.configure(policy)

    def configure(self, policy: CircuitBreakerPolicy) -> None:
        """Apply new limits (a policy push) keeping the requests in flight."""
        self.max_connections = _limit(policy.max_connections)
        self.max_pending_requests = _limit(policy.max_pending_requests)
        # A raised connection limit lets waiting requests go now.
        while self._waiters and self.active < self.max_connections:
            self.active += 1
            self._hand_over_or_undo()

    @property
    def pending(self) -> int:
        return len(self._waiters)

    @property
    def is_open(self) -> bool:
        return self.active >= self.max_connections and self.pending >= self.max_pending_requests

    @property
    def state(self) -> str:
        return "open" if self.is_open else "closed"

    def snapshot(self) -> BreakerState:
        """What it holds now, for the error that says why it refused."""
        return BreakerState(self.active, self.pending, self.max_connections, self.max_pending_requests)

    def try_acquire(self) -> bool:
        """Take a connection slot without waiting, if one is free and nobody queues before us."""
        if self.active < self.max_connections and not self._waiters:
            self.active += 1
            return True
        return False

    async def acquire(self) -> bool:
        """Take a slot, waiting in line if allowed; False means refused (overflow)."""
        if self.try_acquire():
            return True
        if len(self._waiters) >= self.max_pending_requests:
            self.rejected += 1
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # a slot was handed to us just as we were cancelled: pass it on
            else:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            raise
        return True

    def release(self) -> None:
        """Give back a slot: to the first waiter if there is one, else to the pool."""
        if self.active > self.max_connections:  # limits were lowered: shrink first
            self.active -= 1
            return
        self._hand_over_or_undo()

    def _hand_over_or_undo(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves to the waiter; `active` is unchanged
                return
        self.active -= 1


def _limit(value: int | None) -> int:
    return ENVOY_DEFAULT_LIMIT if value is None else value


def circuit_breaker_layer(inner: Handler, breaker: CircuitBreaker | None) -> Handler:
    """Wrap `inner` so each request holds a slot of `breaker`; None passes straight through."""
    if breaker is None:
        return inner

    async def handle(request: Request) -> Response:
        if not breaker.try_acquire() and not await breaker.acquire():
            error = BreakerOpen(breaker.snapshot())
            return Response(503, body=OVERFLOW_BODY, flags={error.flag}, detail=error.reason, error=error)
        try:
            return await inner(request)
        finally:
            breaker.release()

    return handle
