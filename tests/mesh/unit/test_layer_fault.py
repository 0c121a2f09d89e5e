"""Fault injection: abort (FI) and delay (DI) for a percentage of requests, with a seeded rng."""

from __future__ import annotations

import random

from mesh_fakes import FakeClock, FakeSleep, ScriptedUpstream, request, run

from sandbox.mesh.config.model import FaultPolicy
from sandbox.mesh.dataplane.layers.fault import fault_layer


def run_many(policy, count=4000, seed=11):
    clock = FakeClock()
    sleep = FakeSleep(clock)
    upstream = ScriptedUpstream(200)
    handler = fault_layer(upstream, policy, sleep=sleep, rng=random.Random(seed))

    async def all_requests():
        return [await handler(request()) for _ in range(count)]

    return run(all_requests()), upstream, sleep


def test_abort_hits_about_the_configured_percentage_with_its_status_and_flag_fi():
    responses, upstream, _ = run_many(FaultPolicy(abort_percent=30, abort_status=500))
    aborted = [r for r in responses if "FI" in r.flags]
    assert 0.27 < len(aborted) / len(responses) < 0.33
    assert {r.status for r in aborted} == {500}
    assert aborted[0].body == b"fault filter abort"
    assert len(upstream.calls) == len(responses) - len(aborted)  # an abort never reaches upstream


def test_delay_hits_about_the_configured_percentage_and_flags_di():
    responses, upstream, sleep = run_many(FaultPolicy(delay_percent=25, delay_seconds=0.2))
    delayed = [r for r in responses if "DI" in r.flags]
    assert 0.22 < len(delayed) / len(responses) < 0.28
    assert sleep.calls == [0.2] * len(delayed)
    assert all(r.status == 200 for r in responses)
    assert len(upstream.calls) == len(responses)


def test_the_same_seed_gives_the_same_faults():
    policy = FaultPolicy(abort_percent=50)
    first, _, _ = run_many(policy, count=200, seed=4)
    second, _, _ = run_many(policy, count=200, seed=4)
    assert [r.status for r in first] == [r.status for r in second]


def test_hundred_percent_abort_never_calls_upstream():
    responses, upstream, _ = run_many(FaultPolicy(abort_percent=100, abort_status=503), count=50)
    assert upstream.calls == [] and {r.status for r in responses} == {503}


def test_zero_percent_is_no_layer_at_all():
    async def inner(req):
        raise AssertionError("not called")

    no_fault = FaultPolicy(abort_percent=0, delay_percent=50, delay_seconds=0)
    assert fault_layer(inner, no_fault, sleep=FakeSleep(FakeClock()), rng=random.Random()) is inner
