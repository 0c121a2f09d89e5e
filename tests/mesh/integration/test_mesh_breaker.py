"""Overload trips the caller's circuit breaker (fast 503 UO instead of a queue), and it closes after recovery."""

import asyncio

import pytest
from mesh_support import call_entry, open_loop_load, pair_topology, run, running_mesh, stats, statuses

pytestmark = pytest.mark.integration


def test_breaker_opens_under_overload_and_closes_after_recovery(tmp_path):
    path = pair_topology(
        tmp_path,
        b_behaviour="latency: 200ms\n",
        b_traffic="circuit_breaker:\n  max_connections: 2\n  max_pending_requests: 1\n",
    )

    async def body():
        async with running_mesh(path) as mesh:
            samples = await open_loop_load(mesh, rate=100, seconds=1.5)
            overloaded = await stats(mesh, "a")
            await mesh.reset_behaviour("b")
            await mesh.set_behaviour("b", latency_ms=0)
            await asyncio.sleep(0.3)  # let the last slow calls finish
            after = statuses(await call_entry(mesh, 5))
            return overloaded, samples, after, await stats(mesh, "a")

    overloaded, samples, after, final = run(body())
    # The breaker's state is a property of one instant; what it did shows in the counters and latencies.
    assert overloaded["by_flag"].get("UO", 0) > 10
    refused = sorted(s.latency for s in samples if s.status == 502)
    served = sorted(s.latency for s in samples if s.status == 200)
    assert len(refused) > 10, "overload should have been refused"
    # Refused at once rather than queued: faster than the calls that waited for B's 200 ms (compared with them,
    # not with a clock, so a loaded machine slows both alike).
    assert served and refused[len(refused) // 2] < served[len(served) // 2], (refused, served)
    assert after == {200: 5}
    assert final["destinations"]["b"]["circuit"] == "closed"
