"""Retries at the caller's sidecar hide B's transient failures from A, while B's own success stays ~70%."""

import pytest
from mesh_support import call_entry, open_loop_load, pair_topology, run, running_mesh, stats, statuses

from sandbox.mesh.runtime.loadgen import summarize

pytestmark = pytest.mark.integration


def test_three_retries_turn_30_percent_transient_503_into_over_99_percent_success(tmp_path):
    path = pair_topology(
        tmp_path,
        b_behaviour="error_rate: 0.3\nerror_status: 503\n",
        # A budget big enough for every retry (this test is about retries, not the budget) and a
        # short backoff to keep the test quick.
        b_traffic="retry:\n  attempts: 3\n  retry_on: [5xx]\n  backoff_base: 1ms\n  backoff_max: 4ms\n"
        "  budget_ratio: 1.0\n  budget_min_per_second: 100\n",
    )

    async def body():
        async with running_mesh(path) as mesh:
            # Sequential calls: B draws its errors from its per-replica seeded generator in arrival
            # order, so the run is reproducible. Expected effective success: 1 - 0.3**4 = 99.19%.
            responses = await call_entry(mesh, 1000)
            return responses, (await mesh.service_stats("b"))[0], await stats(mesh, "a")

    responses, b_stats, a_sidecar = run(body(), timeout=90)
    effective = statuses(responses).get(200, 0) / len(responses)
    assert effective > 0.99, statuses(responses)
    b_ok = b_stats["by_status"].get("200", 0) / b_stats["requests"]
    assert 0.65 <= b_ok <= 0.75, b_stats  # B itself still fails ~30% of what it is sent
    assert a_sidecar["destinations"]["b"]["retries"] == b_stats["by_status"]["503"] - statuses(responses).get(502, 0)


def test_open_loop_load_with_retries_keeps_effective_success_near_the_retry_math(tmp_path):
    path = pair_topology(
        tmp_path,
        b_behaviour="error_rate: 0.3\nerror_status: 503\n",
        b_traffic="retry:\n  attempts: 3\n  retry_on: [5xx]\n  budget_ratio: 1.0\n  budget_min_per_second: 100\n",
    )

    async def body():
        async with running_mesh(path) as mesh:
            samples = await open_loop_load(mesh, rate=100, seconds=3.0)
            return summarize(samples), (await mesh.service_stats("b"))[0]

    effective, b_stats = run(body())
    assert effective["requests"] >= 280
    # 0.3^4 = 0.81% of calls fail all four tries (mean 2.4 of 300, 9 is over four standard deviations away);
    # Whatever fails, fails as B's 503 passed on or a reset keep-alive connection (502, not retried: retry_on
    # is 5xx only), never as a timeout of an overloaded machine.
    failed = {status: n for status, n in effective["statuses"].items() if int(status) != 200}
    assert set(failed) <= {"502", "503"}, effective
    assert sum(failed.values()) <= 9, effective
    assert 0.62 <= b_stats["by_status"].get("200", 0) / b_stats["requests"] <= 0.78, b_stats


def test_without_retries_the_failures_reach_the_caller(tmp_path):
    path = pair_topology(tmp_path, b_behaviour="error_rate: 0.3\n")

    async def body():
        async with running_mesh(path) as mesh:
            samples = await open_loop_load(mesh, rate=200, seconds=2.0)
            return summarize(samples)

    effective = run(body())
    assert 0.6 <= effective["success_rate"] <= 0.8, effective
