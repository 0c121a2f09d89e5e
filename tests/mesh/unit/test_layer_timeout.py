"""Timeout layer alone, and per-try vs overall timeouts as the stack orders them."""

from __future__ import annotations

import asyncio
import random

from mesh_fakes import endpoints, request, run, run_virtual

from sandbox.mesh.config.model import Response, RetryPolicy, TimeoutPolicy, TrafficPolicy
from sandbox.mesh.dataplane.layers.timeout import timeout_layer
from sandbox.mesh.dataplane.stack import outbound_stack
from sandbox.mesh.dataplane.telemetry import SidecarTelemetry


def test_a_slow_answer_becomes_504_with_flag_ut():
    async def slow(req):
        await asyncio.sleep(1.0)
        return Response(200)

    response = run(timeout_layer(slow, 0.01)(request()))
    assert response.status == 504
    assert response.flags == {"UT"}
    assert "10 ms" in response.detail


def test_a_fast_answer_passes_untouched():
    async def fast(req):
        return Response(201, body=b"made")

    response = run(timeout_layer(fast, 0.5)(request()))
    assert (response.status, response.body, response.flags) == (201, b"made", set())


def test_no_timeout_means_no_wrapper():
    async def inner(req):
        return Response(200)

    assert timeout_layer(inner, None) is inner


class HangThenAnswer:
    """An upstream whose first `hangs` calls never answer (within 60 s), then answers 200."""

    def __init__(self, hangs: int) -> None:
        self.hangs = hangs
        self.calls = 0

    async def __call__(self, req):
        self.calls += 1
        if self.calls <= self.hangs:
            await asyncio.sleep(60)
        return Response(200)


def run_stack(policy: TrafficPolicy, upstream) -> tuple[Response, float, SidecarTelemetry]:
    telemetry = SidecarTelemetry("a")

    async def scenario():
        loop = asyncio.get_running_loop()
        handler = outbound_stack(
            policy=policy,
            endpoints=lambda: endpoints(),
            send=upstream,
            clock=loop.time,
            sleep=asyncio.sleep,
            rng=random.Random(3),
            telemetry=telemetry,
        )
        start = loop.time()
        response = await handler(request())
        return response, loop.time() - start

    response, elapsed = run_virtual(scenario)
    return response, elapsed, telemetry


def test_a_per_try_timeout_lets_a_retry_succeed_after_a_hung_try():
    policy = TrafficPolicy(retry=RetryPolicy(attempts=2, per_try_timeout=0.1))
    response, elapsed, telemetry = run_stack(policy, HangThenAnswer(hangs=1))
    assert response.status == 200
    assert 0.1 <= elapsed < 0.1 + 0.025 + 0.001  # one cut-off try plus at most the first backoff
    assert telemetry.access_log()[-1].attempts == 2


def test_the_overall_timeout_bounds_all_tries_together():
    policy = TrafficPolicy(
        timeout=TimeoutPolicy(request_timeout=0.25),
        retry=RetryPolicy(attempts=5, per_try_timeout=0.1),
    )
    upstream = HangThenAnswer(hangs=100)
    response, elapsed, telemetry = run_stack(policy, upstream)
    assert response.status == 504 and "UT" in response.flags
    assert "request timeout" in response.detail
    assert abs(elapsed - 0.25) < 1e-6
    assert 2 <= upstream.calls <= 3  # tries of 0.1 s plus backoffs fit only two or three times


def test_without_a_per_try_timeout_the_first_hung_try_uses_the_whole_deadline():
    policy = TrafficPolicy(timeout=TimeoutPolicy(request_timeout=0.25), retry=RetryPolicy(attempts=5))
    upstream = HangThenAnswer(hangs=1)
    response, elapsed, _ = run_stack(policy, upstream)
    assert response.status == 504 and upstream.calls == 1
    assert abs(elapsed - 0.25) < 1e-6


def test_every_try_timing_out_ends_in_ut_and_urx():
    policy = TrafficPolicy(retry=RetryPolicy(attempts=2, per_try_timeout=0.05))
    upstream = HangThenAnswer(hangs=100)
    response, _, telemetry = run_stack(policy, upstream)
    assert response.status == 504 and {"UT", "URX"} <= response.flags
    assert upstream.calls == 3
    assert telemetry.access_log()[-1].flags == "URX,UT"
