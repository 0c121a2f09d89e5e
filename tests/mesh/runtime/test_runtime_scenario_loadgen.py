"""Scenario parsing, and the open-loop load generator counting a stall from each request's scheduled time."""

import asyncio

import pytest

from sandbox.mesh.config.model import Response
from sandbox.mesh.dataplane import http1
from sandbox.mesh.process import bind_listener
from sandbox.mesh.runtime.loadgen import LoadGenerator, percentile, summarize
from sandbox.mesh.runtime.scenario import ScenarioError, parse_scenario, parse_time


def test_a_scenario_is_a_sorted_timeline():
    scenario = parse_scenario("""
name: demo
actions:
  - {at: 5s, action: heal, service: b}
  - {at: 500ms, action: fail, service: b, percent: 50, status: 503}
  - {at: 2, action: kill, service: b, target: sidecar}
""")
    assert scenario.name == "demo"
    assert [(s.at, s.action) for s in scenario.steps] == [(0.5, "fail"), (2.0, "kill"), (5.0, "heal")]
    assert scenario.steps[0].args == {"service": "b", "percent": 50, "status": 503}


@pytest.mark.parametrize(
    "text, message",
    [
        ("actions:\n  - {at: 1s, action: explode, service: b}\n", "actions[0].action: unknown action 'explode'"),
        ("actions:\n  - {at: 1s, action: fail, service: b}\n", "actions[0]: fail needs percent"),
        ("actions:\n  - {at: soon, action: heal, service: b}\n", "actions[0].at"),
        ("actions:\n  - {at: 1s, action: heal, service: b, colour: red}\n", "unknown field(s) for heal: colour"),
    ],
)
def test_bad_scenarios_are_refused_with_the_step(text, message):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text)
    assert message in str(caught.value)


def test_parse_time_and_percentile():
    assert parse_time("250ms", "at") == 0.25 and parse_time("3s", "at") == 3.0 and parse_time(4, "at") == 4.0
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 0.5) == 50.0 and percentile(values, 0.99) == 99.0 and percentile([], 0.5) == 0.0


def test_a_server_stall_shows_in_the_latency_of_every_request_scheduled_during_it():
    """Open loop: requests keep leaving on schedule while the server stalls, and each one's latency
    counts from when it was due. A closed-loop client would have sent one request and waited."""

    async def body():
        stalled = asyncio.Event()

        async def handle(request, writer):
            if not stalled.is_set():
                stalled.set()
                await asyncio.sleep(0.5)  # the first request stalls the only worker path below
            return Response(200)

        lock = asyncio.Lock()

        async def serialized(request, writer):
            async with lock:  # one at a time, like a single-threaded stuck server
                return await handle(request, writer)

        server = http1.HttpServer(serialized)
        await server.start(bind_listener())
        load = LoadGenerator("127.0.0.1", [server.port], rate=100, host_header="x")
        try:
            samples = await load.run(1.0)
        finally:
            load.close()
            await server.stop()
        return samples

    samples = asyncio.run(body())
    summary = summarize(samples)
    assert summary["requests"] >= 95  # the schedule was kept: ~100 requests in 1 s despite the stall
    during = [s for s in samples if s.scheduled < 0.4]
    # A request due at t waited until the stall ended at ~0.5 s: its latency is ~0.5 - t.
    assert all(s.latency >= 0.5 - s.scheduled - 0.05 for s in during)
    assert sum(s.latency > 0.1 for s in samples) >= 35  # ~40% of the second was stalled
    assert summary["max_ms"] >= 450


def test_a_request_failing_in_an_unforeseen_way_is_counted_as_a_failure():
    async def body():
        load = LoadGenerator("127.0.0.1", [9], rate=50, host_header="x")

        async def broken(request, host_header):
            raise RuntimeError("a bug below the load generator")

        for pool in load.pools:
            pool.request = broken
        try:
            return await load.run(0.2)
        finally:
            load.close()

    samples = asyncio.run(body())
    assert len(samples) == 10  # every scheduled request has a sample
    assert summarize(samples)["success_rate"] == 0.0 and {s.status for s in samples} == {0}


def test_the_load_generator_sends_exactly_what_was_scheduled():
    """A float sum of 1/rate steps can fall a hair short of the end (ten 0.02 s steps add up to 0.19999...),
    which once sent an 11th request where 10 were scheduled. Whether it does depends on the clock's value at
    the start, so the schedule is run many times; failed requests would count as samples too."""
    plans = [(50, 0.2, 10), (100, 0.1, 10), (1000, 0.01, 10), (300, 0.03, 9), (30, 0.1, 3)] * 6

    async def body():
        server = http1.HttpServer(lambda request, writer: asyncio.sleep(0, Response(200)))
        await server.start(bind_listener())
        sent = []
        try:
            for rate, seconds, _ in plans:
                load = LoadGenerator("127.0.0.1", [server.port], rate=rate, host_header="x")
                try:
                    sent.append(len(await load.run(seconds)))
                finally:
                    load.close()
        finally:
            await server.stop()
        return sent

    assert asyncio.run(body()) == [expected for _, _, expected in plans]


def test_a_scenario_step_is_described_in_the_words_the_learner_reads():
    # The command line and the result's scenario list show a step the way the site says the command.
    scenario = parse_scenario("actions:\n  - {at: 1s, action: fail, service: b, percent: 30}\n")
    assert scenario.steps[0].describe() == "service b fails 30% of requests with 503"
