"""Retries at the caller's sidecar hide B's transient failures from A, while B's own success stays ~70%."""

import pytest

from mesh_support import pair_topology, run, running_mesh, stats
from sandbox.mesh.loadgen import LoadGenerator, summarize

pytestmark = pytest.mark.integration


def test_three_retries_turn_30_percent_transient_503_into_over_99_percent_success(tmp_path):
    path = pair_topology(
        tmp_path,
        b_behaviour="error_rate: 0.3\nerror_status: 503\n",
        # A budget big enough for every retry: this test is about what retries do, not the budget.
        b_traffic="retry:\n  attempts: 3\n  retry_on: [5xx]\n  budget_ratio: 1.0\n  budget_min_per_second: 100\n",
    )

    async def body():
        async with running_mesh(path) as mesh:
            load = LoadGenerator("127.0.0.1", mesh.entry_ports(), rate=250, host_header="a",
                                 ssl_context=await mesh.entry_ssl_context())
            samples = await load.run(4.0)
            load.close()
            b_stats = await mesh.service_stats("b")
            a_sidecar = await stats(mesh, "a")
            return summarize(samples), b_stats[0], a_sidecar

    effective, b_stats, a_sidecar = run(body())
    assert effective["requests"] >= 900
    assert effective["success_rate"] > 0.99, effective
    b_ok = b_stats["by_status"].get("200", 0) / b_stats["requests"]
    assert 0.62 <= b_ok <= 0.78, b_stats  # B itself still fails ~30% of what it is sent
    assert b_stats["by_status"].get("503", 0) > 0
    assert a_sidecar["destinations"]["b"]["retries"] >= b_stats["by_status"]["503"] * 0.9


def test_without_retries_the_failures_reach_the_caller(tmp_path):
    path = pair_topology(tmp_path, b_behaviour="error_rate: 0.3\n")

    async def body():
        async with running_mesh(path) as mesh:
            load = LoadGenerator("127.0.0.1", mesh.entry_ports(), rate=200, host_header="a",
                                 ssl_context=await mesh.entry_ssl_context())
            samples = await load.run(2.0)
            load.close()
            return summarize(samples)

    effective = run(body())
    assert 0.6 <= effective["success_rate"] <= 0.8, effective
