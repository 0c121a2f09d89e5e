"""Outlier detection: ejection on consecutive 5xx, growing ejection time, max percent, return."""

from __future__ import annotations

import asyncio

import pytest
from mesh_fakes import FakeClock, ScriptedUpstream, endpoints, request, run

from sandbox.mesh.config.model import OutlierDetectionPolicy, Response
from sandbox.mesh.dataplane.layers.outlier import OutlierDetector, outlier_layer


def detector(clock, *, consecutive=3, base=30.0, percent=100):
    return OutlierDetector(
        OutlierDetectionPolicy(consecutive_5xx=consecutive, base_ejection_time=base, max_ejection_percent=percent),
        clock=clock,
    )


def fail(d, endpoint, times, count=3):
    for _ in range(times):
        d.record_failure(endpoint, count)


def test_an_endpoint_is_ejected_after_the_configured_consecutive_5xx():
    clock = FakeClock()
    d = detector(clock, consecutive=3)
    eps = endpoints(count=3)
    fail(d, eps[0], 2)
    assert d.available(eps) == eps
    fail(d, eps[0], 1)
    assert d.available(eps) == eps[1:]
    assert d.ejections_total == 1 and d.events[-1].action == "ejected"


def test_a_success_in_between_resets_the_count():
    d = detector(FakeClock(), consecutive=3)
    eps = endpoints(count=3)
    fail(d, eps[0], 2)
    d.record_success(eps[0])
    fail(d, eps[0], 2)
    assert not d.is_ejected(eps[0])


def test_an_ejected_endpoint_returns_after_the_base_ejection_time():
    clock = FakeClock()
    d = detector(clock, base=30.0)
    eps = endpoints(count=3)
    fail(d, eps[1], 3)
    clock.advance(29.9)
    assert d.is_ejected(eps[1])
    clock.advance(0.2)
    assert not d.is_ejected(eps[1])
    assert d.available(eps) == eps
    assert d.events[-1].action == "returned"


def test_each_new_ejection_lasts_longer():
    clock = FakeClock()
    d = detector(clock, base=10.0)
    eps = endpoints(count=3)
    durations = []
    for _ in range(3):
        fail(d, eps[0], 3)
        durations.append(d.events[-1].seconds)
        clock.advance(durations[-1] + 0.001)  # just back, fails again at once
    assert durations == [10.0, 20.0, 30.0]


def test_the_ejection_multiplier_decays_while_the_endpoint_stays_healthy():
    clock = FakeClock()
    d = detector(clock, base=10.0)
    eps = endpoints(count=3)
    fail(d, eps[0], 3)
    clock.advance(10.001)
    fail(d, eps[0], 3)
    assert d.events[-1].seconds == 20.0
    clock.advance(20.0 + 100.0)  # healthy for a long while after returning
    fail(d, eps[0], 3)
    assert d.events[-1].seconds == 10.0


def test_no_more_than_max_ejection_percent_are_ejected_at_once():
    clock = FakeClock()
    d = detector(clock, percent=20)
    eps = endpoints(count=10)
    for endpoint in eps[:5]:
        fail(d, endpoint, 3, count=10)
    assert d.ejected_count() == 2
    assert len(d.available(eps)) == 8
    assert d.events[-1].action.startswith("ejection refused")


def test_at_least_one_endpoint_may_be_ejected_when_the_percent_is_above_zero():
    d = detector(FakeClock(), percent=10)
    eps = endpoints(count=3)  # 10% of 3 rounds down to 0, but one may still go
    fail(d, eps[0], 3)
    fail(d, eps[1], 3)
    assert d.ejected_count() == 1


def test_zero_percent_never_ejects():
    d = detector(FakeClock(), percent=0)
    eps = endpoints(count=3)
    fail(d, eps[0], 10)
    assert d.ejected_count() == 0


def test_the_layer_counts_5xx_and_connect_failures_but_not_breaker_refusals():
    clock = FakeClock()
    d = detector(clock, consecutive=2)
    eps = endpoints(count=3)
    upstream = ScriptedUpstream(
        Response(503, flags={"UO"}), Response(503, flags={"UO"}), 500, Response(503, flags={"UF"})
    )
    handler = outlier_layer(upstream, d, endpoint_count=lambda: 3)
    req = request(endpoint=eps[2])
    run(handler(req))
    run(handler(req))
    assert not d.is_ejected(eps[2])  # two UO answers say nothing about the endpoint
    run(handler(req))
    run(handler(req))
    assert d.is_ejected(eps[2])


def test_no_detector_passes_straight_through():
    async def inner(req):
        return Response(200)

    assert outlier_layer(inner, None, endpoint_count=lambda: 1) is inner


def test_a_cancelled_try_says_nothing_about_the_endpoint():
    # The caller hung up (DC) or the overall deadline fired: the endpoint did nothing wrong.
    d = detector(FakeClock(), consecutive=1)
    eps = endpoints(count=3)

    async def scenario():
        reached = asyncio.Event()

        async def hang(req):
            reached.set()
            await asyncio.Event().wait()

        handler = outlier_layer(hang, d, endpoint_count=lambda: 3)
        for _ in range(3):
            reached.clear()
            task = asyncio.create_task(handler(request(endpoint=eps[0])))
            await reached.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run(scenario())
    assert not d.is_ejected(eps[0]) and d.ejections_total == 0
