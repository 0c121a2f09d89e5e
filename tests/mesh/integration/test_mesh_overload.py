"""Overload is shed fast and visibly, and the mesh comes back by itself once the cause is gone.

Issue 10 measured, on a busy 2-core machine: `shop` at 100 req/s at 25-33% success, `shop-overload` with no
open circuit and 0% after its heal, `kill-sidecar` at 100 req/s near 1% after the sidecar was back. Each case
runs here through the experiment runtime, and each assertion is on what its snapshots show: the breaker refusing
the excess while the overload lasts, and some 5-second stretch at >= 99% within a generous 20 s of the cause
going away (never "within N seconds" of a clock).
"""

import asyncio
from itertools import pairwise

import pytest
from mesh_support import access_log, metrics_text, pair_topology, run, running_in_process_mesh

from sandbox.mesh.config.model import CircuitBreakerPolicy, Request
from sandbox.mesh.config.topology import load_topology, shipped_topology_path
from sandbox.mesh.dataplane import http1
from sandbox.mesh.runtime.events import CommandApplied, Snapshot
from sandbox.mesh.runtime.experiment import Experiment
from sandbox.mesh.runtime.scenario import load_scenario

pytestmark = pytest.mark.integration
SCENARIOS = shipped_topology_path("shop").parent.parent / "scenarios"
WINDOW = 5.0  # seconds of snapshots that must together reach the target
WITHIN = 20.0  # ... starting no later than this after the cause is removed


def _snapshots(events) -> list[Snapshot]:
    return [e for e in events if isinstance(e, Snapshot)]


def _applied(events, action: str) -> float:
    return next(e.t for e in events if isinstance(e, CommandApplied) and e.command.get("action") == action)


def _windows(events, after: float) -> list[tuple[float, float]]:
    """(start, success) of every WINDOW-long run of whole snapshot intervals that begins after `after` and
    within WITHIN of it; success is the load generator's, weighted by the requests of each interval."""
    intervals = [(previous.t, s) for previous, s in pairwise(_snapshots(events)) if previous.t >= after]
    found = []
    for i, (start, _) in enumerate(intervals):
        if start > after + WITHIN:
            break
        taken = [s for begin, s in intervals[i:] if s.t <= start + WINDOW + 0.5]
        if not taken or taken[-1].t < start + WINDOW - 0.5:
            continue
        sent = sum(s.requests for s in taken if s.effective_success is not None)
        ok = sum(s.requests * s.effective_success for s in taken if s.effective_success is not None)
        if sent:
            found.append((start, ok / sent))
    return found


def _recovered(events, after: float) -> bool:
    return any(success >= 0.99 for _, success in _windows(events, after))


def _experiment(topology_path, events, *, rate: float, scenario: str | None = None) -> Experiment:
    topology = load_topology(str(topology_path))
    return Experiment(
        topology,
        topology_path=str(topology_path),
        rate=rate,
        on_event=events.append,
        scenario=load_scenario(SCENARIOS / scenario, topology) if scenario else None,
    )


@pytest.mark.saturates  # 100+ req/s of shop: it loads the whole machine
def test_shop_at_100_requests_a_second_is_served(tmp_path):
    events = []
    finished = run(_experiment(shipped_topology_path("shop"), events, rate=100).run(duration=20), 90)

    assert finished.reason == "completed", finished.reason
    assert _recovered(events, after=0.0), [round(s, 3) for _, s in _windows(events, 0.0)]
    # Not a collapse at any point: the whole run, its first second of cold connections included.
    assert finished.result["summary"]["success_rate"] >= 0.9, finished.result["summary"]


@pytest.mark.saturates  # 100+ req/s of shop: it loads the whole machine
def test_shop_overload_opens_the_breaker_then_recovers_after_heal(tmp_path):
    events = []
    finished = run(
        _experiment(shipped_topology_path("shop"), events, rate=150, scenario="shop-overload.yaml").run(duration=30),
        120,
    )

    assert finished.reason == "completed", finished.reason
    slowed, healed = (
        _applied(events, "slow"),
        next(
            e.t
            for e in events
            if isinstance(e, CommandApplied) and e.command == {"action": "heal", "service": "payments"}
        ),
    )
    overloaded = [s for previous, s in pairwise(_snapshots(events)) if previous.t >= slowed and s.t <= healed]
    cart_payments = [next(e for e in s.edges if (e.source, e.destination) == ("cart", "payments")) for s in overloaded]
    # Shed fast and visibly: the breaker refuses the excess with 503 UO instead of letting a queue grow.
    assert sum(e.pending_overflow for e in cart_payments) > 0, cart_payments
    assert any(e.circuit == "open" for e in cart_payments) or any(
        s.totals.get("open_circuits", 0) > 0 for s in overloaded
    ), [s.totals for s in overloaded]
    assert _recovered(events, after=healed), [round(s, 3) for _, s in _windows(events, healed)]


@pytest.mark.saturates  # 100+ req/s of shop: it loads the whole machine
def test_kill_sidecar_at_100_requests_a_second_recovers_after_restart(tmp_path):
    events = []
    finished = run(
        _experiment(shipped_topology_path("pair"), events, rate=100, scenario="kill-sidecar.yaml").run(duration=30), 120
    )

    assert finished.reason == "completed", finished.reason
    killed, restarted = _applied(events, "kill"), _applied(events, "restart")
    down = [s for previous, s in pairwise(_snapshots(events)) if previous.t >= killed and s.t <= restarted]
    # The kill really took b away (a request already past b's sidecar may still have come back).
    assert down and all(s.effective_success <= 0.05 for s in down), [s.effective_success for s in down]
    assert _recovered(events, after=restarted), [round(s, 3) for _, s in _windows(events, restarted)]


def test_a_sidecar_refuses_upstream_requests_past_its_bound_at_once_and_serves_again_after(tmp_path):
    # No circuit breaker on b: before the sidecar-wide bound, every request waited on the hung service and a
    # burst held one upstream connection (and TLS handshake) each, until the process ran out of files.
    path = pair_topology(tmp_path, b_traffic="timeout: 30s\n")

    async def body():
        async with running_in_process_mesh(path) as mesh:
            sidecar = mesh.sidecars[("a", 0)]
            sidecar.upstream_admission.configure(CircuitBreakerPolicy(max_connections=4, max_pending_requests=2))
            pool = http1.ConnectionPool("127.0.0.1", mesh.replicas[("a", 0)].outbound_port)
            await mesh.set_behaviour("b", hang=True)
            burst = [asyncio.create_task(pool.request(Request("GET", "/"), "b")) for _ in range(10)]
            # Wait on a condition, generously: the 4 past the bound are answered while b still hangs.
            for _ in range(200):
                if sum(task.done() for task in burst) >= 4:
                    break
                await asyncio.sleep(0.05)
            answered = [task for task in burst if task.done()]
            shed = [task.result() for task in answered]
            await mesh.set_behaviour("b", hang=False)
            held = [await asyncio.wait_for(task, 20) for task in burst if task not in answered]
            after = [await pool.request(Request("GET", "/"), "b") for _ in range(3)]
            log = await access_log(mesh, "a")
            metrics = await metrics_text(mesh, "a")
            pool.close()
            return shed, held, after, log, metrics

    shed, held, after, log, metrics = run(body())
    assert [(r.status, r.headers.get("x-mesh-flags")) for r in shed] == [(503, "UO")] * 4
    assert [r.status for r in held] == [200] * 6  # the 4 in flight and the 2 that waited are served once b answers
    assert [r.status for r in after] == [200] * 3
    refused = [r for r in log if r["direction"] == "outbound" and "UO" in r["flags"]]
    assert len(refused) == 4 and all("sidecar overloaded" in r.get("detail", "") for r in refused), refused
    assert 'mesh_sidecar_upstream_overflow_total{workload="a"} 4' in metrics.splitlines()
    assert 'mesh_sidecar_upstream_requests{workload="a"} 0' in metrics.splitlines()  # every place given back


def test_outbound_tls_handshakes_take_turns_and_a_wait_past_the_connect_timeout_is_a_connect_failure(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_in_process_mesh(path) as mesh:
            sidecar = mesh.sidecars[("a", 0)]
            sidecar.outbound_handshakes = turns = asyncio.Semaphore(1)  # before a's first pool to b is made
            pool = http1.ConnectionPool("127.0.0.1", mesh.replicas[("a", 0)].outbound_port)
            await turns.acquire()  # another handshake holds the only turn
            waited = await pool.request(Request("GET", "/"), "b")
            turns.release()
            served = await pool.request(Request("GET", "/"), "b")
            log = await access_log(mesh, "a")
            pool.close()
            return waited, served, log

    waited, served, log = run(body())
    assert (waited.status, waited.headers.get("x-mesh-flags")) == (503, "UF")
    assert served.status == 200
    assert any(r["direction"] == "outbound" and r["status"] == 503 and "connect timeout" in r["detail"] for r in log)
