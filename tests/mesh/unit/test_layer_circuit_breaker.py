"""Circuit breaker: 503 UO past max_connections + max_pending_requests; closes when load drains."""

from __future__ import annotations

import asyncio

from mesh_fakes import request, run

from sandbox.mesh.config.model import CircuitBreakerPolicy, Response
from sandbox.mesh.dataplane.layers.circuit_breaker import CircuitBreaker, circuit_breaker_layer


class GatedUpstream:
    """Holds every request until `gate` opens; counts how many it saw at once."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, req):
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.gate.wait()
            return Response(200)
        finally:
            self.in_flight -= 1


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


def test_overflow_past_connections_and_pending_is_refused_at_once_with_uo():
    async def scenario():
        breaker = CircuitBreaker(CircuitBreakerPolicy(max_connections=1, max_pending_requests=1))
        upstream = GatedUpstream()
        handler = circuit_breaker_layer(upstream, breaker)
        first = asyncio.create_task(handler(request()))
        second = asyncio.create_task(handler(request()))
        await settle()
        assert (breaker.active, breaker.pending, breaker.state) == (1, 1, "open")
        third = await handler(request())  # answered without waiting for the gate
        assert third.status == 503 and third.flags == {"UO"}
        assert "max_connections 1" in third.detail
        upstream.gate.set()
        assert [r.status for r in await asyncio.gather(first, second)] == [200, 200]
        assert upstream.most_in_flight == 1  # the pending one waited for the connection
        assert (breaker.active, breaker.pending, breaker.state, breaker.rejected) == (0, 0, "closed", 1)
        after = await handler(request())
        assert after.status == 200

    run(scenario())


def test_with_no_pending_room_the_second_concurrent_request_is_refused():
    async def scenario():
        breaker = CircuitBreaker(CircuitBreakerPolicy(max_connections=2, max_pending_requests=0))
        upstream = GatedUpstream()
        handler = circuit_breaker_layer(upstream, breaker)
        held = [asyncio.create_task(handler(request())) for _ in range(2)]
        await settle()
        refused = await asyncio.gather(*(handler(request()) for _ in range(3)))
        assert [r.flags for r in refused] == [{"UO"}] * 3
        upstream.gate.set()
        assert [r.status for r in await asyncio.gather(*held)] == [200, 200]
        assert breaker.state == "closed"

    run(scenario())


def test_a_failing_request_still_frees_its_slot():
    async def boom(req):
        raise RuntimeError("bug in send")

    async def scenario():
        breaker = CircuitBreaker(CircuitBreakerPolicy(max_connections=1, max_pending_requests=0))
        handler = circuit_breaker_layer(boom, breaker)
        for _ in range(3):
            try:
                await handler(request())
            except RuntimeError:
                pass
        assert breaker.active == 0 and breaker.rejected == 0

    run(scenario())


def test_a_waiter_cancelled_by_a_timeout_leaves_the_queue():
    async def scenario():
        breaker = CircuitBreaker(CircuitBreakerPolicy(max_connections=1, max_pending_requests=1))
        upstream = GatedUpstream()
        handler = circuit_breaker_layer(upstream, breaker)
        holder = asyncio.create_task(handler(request()))
        await settle()
        try:
            await asyncio.wait_for(handler(request()), 0.01)
        except TimeoutError:
            pass
        assert breaker.pending == 0 and breaker.state == "closed"
        upstream.gate.set()
        await holder
        assert breaker.active == 0

    run(scenario())


def test_raising_the_limit_on_a_policy_push_lets_waiters_go():
    async def scenario():
        breaker = CircuitBreaker(CircuitBreakerPolicy(max_connections=1, max_pending_requests=5))
        upstream = GatedUpstream()
        handler = circuit_breaker_layer(upstream, breaker)
        tasks = [asyncio.create_task(handler(request())) for _ in range(3)]
        await settle()
        assert upstream.in_flight == 1 and breaker.pending == 2
        breaker.configure(CircuitBreakerPolicy(max_connections=3, max_pending_requests=5))
        await settle()
        assert upstream.in_flight == 3 and breaker.pending == 0
        upstream.gate.set()
        await asyncio.gather(*tasks)
        assert breaker.active == 0

    run(scenario())


def test_no_breaker_passes_straight_through():
    async def inner(req):
        return Response(200)

    assert circuit_breaker_layer(inner, None) is inner
