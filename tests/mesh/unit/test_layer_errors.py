"""A layer's failure is a typed error that carries its context, kept on the answer beside the unchanged wire."""

from __future__ import annotations

import asyncio
import random

from mesh_fakes import FakeClock, FakeSleep, ScriptedUpstream, request, run

from sandbox.mesh.config.flags import Flag
from sandbox.mesh.config.layer_errors import (
    BreakerOpen,
    BreakerState,
    ConnectFailure,
    RequestTimeout,
    RetriesExhausted,
    UpstreamReset,
)
from sandbox.mesh.config.model import CircuitBreakerPolicy, Response, RetryPolicy
from sandbox.mesh.dataplane.layers.circuit_breaker import CircuitBreaker, circuit_breaker_layer
from sandbox.mesh.dataplane.layers.retry import RetryBudget, retry_layer
from sandbox.mesh.dataplane.layers.timeout import timeout_layer
from sandbox.mesh.dataplane.layers.upstream import upstream_errors_as_responses


def test_a_timeout_carries_the_deadline_that_expired():
    async def slow(req):
        await asyncio.sleep(30)
        return Response(200)

    response = run(timeout_layer(slow, 0.01, scope="per-try")(request()))
    assert isinstance(response.error, RequestTimeout)
    assert (response.error.seconds, response.error.scope) == (0.01, "per-try")
    assert (response.status, response.flags.text, response.detail) == (504, "UT", "per-try timeout of 10 ms exceeded")


def test_an_open_breaker_carries_what_it_held_when_it_refused():
    async def scenario():
        gate = asyncio.Event()

        async def held(req):
            await gate.wait()
            return Response(200)

        breaker = CircuitBreaker(CircuitBreakerPolicy(max_connections=1, max_pending_requests=1))
        handler = circuit_breaker_layer(held, breaker)
        waiting = [asyncio.create_task(handler(request())) for _ in range(2)]
        for _ in range(5):
            await asyncio.sleep(0)
        refused = await handler(request())
        gate.set()
        await asyncio.gather(*waiting)
        return refused

    refused = run(scenario())
    assert isinstance(refused.error, BreakerOpen)
    assert refused.error.state == BreakerState(active=1, pending=1, max_connections=1, max_pending_requests=1)
    assert (refused.status, refused.flags.text) == (503, "UO")
    assert refused.detail == (
        "circuit breaker open: 1 requests in flight (max_connections 1), 1 waiting (max_pending_requests 1)"
    )


def test_exhausted_retries_carry_the_retries_made_and_the_last_tries_error():
    upstream = ScriptedUpstream(ConnectFailure("connection refused"))
    clock = FakeClock()
    policy = RetryPolicy(attempts=2, retry_on=frozenset({"connect-failure"}))
    handler = retry_layer(
        upstream_errors_as_responses(upstream),
        policy,
        budget=RetryBudget(clock=clock),
        sleep=FakeSleep(clock),
        rng=random.Random(7),
    )
    response = run(handler(request()))
    assert isinstance(response.error, RetriesExhausted)
    assert response.error.retries == 2 and len(upstream.calls) == 3
    assert isinstance(response.error.last, ConnectFailure)
    assert (response.status, response.flags.text) == (503, "UF,URX")
    assert response.detail == "connection refused; 2 retries exhausted"


def test_socket_errors_become_the_typed_transport_failures():
    refused = run(upstream_errors_as_responses(ScriptedUpstream(ConnectionRefusedError("refused")))(request()))
    reset = run(upstream_errors_as_responses(ScriptedUpstream(ConnectionResetError("reset")))(request()))
    assert isinstance(refused.error, ConnectFailure) and refused.error.retry_on == "connect-failure"
    assert isinstance(reset.error, UpstreamReset) and reset.error.retry_on == "reset"
    assert (refused.flags, reset.flags) == ({Flag.UF}, {Flag.UC})


def test_an_answer_from_the_upstream_carries_no_error():
    response = run(upstream_errors_as_responses(ScriptedUpstream(200))(request()))
    assert response.error is None and response.flags.text == "-"
