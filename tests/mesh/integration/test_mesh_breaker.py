"""Overload trips the caller's circuit breaker (fast 503 UO instead of a queue), and it closes after recovery."""

import asyncio

import pytest

from mesh_support import call_entry, pair_topology, run, running_mesh, stats, statuses
from sandbox.mesh.loadgen import LoadGenerator

pytestmark = pytest.mark.integration


def test_breaker_opens_under_overload_and_closes_after_recovery(tmp_path):
    path = pair_topology(
        tmp_path,
        b_behaviour="latency: 200ms\n",
        b_traffic="circuit_breaker:\n  max_connections: 2\n  max_pending_requests: 1\n",
    )

    async def body():
        async with running_mesh(path) as mesh:
            load = LoadGenerator("127.0.0.1", mesh.entry_ports(), rate=100, host_header="a",
                                 ssl_context=await mesh.entry_ssl_context())
            task = asyncio.create_task(load.run(1.5))
            await asyncio.sleep(0.8)
            while_overloaded = await stats(mesh, "a")
            samples = await task
            load.close()
            await mesh.reset_behaviour("b")
            await mesh.set_behaviour("b", latency_ms=0)
            await asyncio.sleep(0.3)  # let the last slow calls finish
            after = statuses(await call_entry(mesh, 5))
            return while_overloaded, samples, after, await stats(mesh, "a")

    while_overloaded, samples, after, final = run(body())
    assert while_overloaded["destinations"]["b"]["circuit"] == "open"
    assert while_overloaded["by_flag"].get("UO", 0) > 10
    refused_fast = [s for s in samples if s.status == 502]
    assert refused_fast, "overload should have been refused"
    assert after == {200: 5}
    assert final["destinations"]["b"]["circuit"] == "closed"
