"""The same components in one event loop (fast mode): a flaky B behind retries, and a stopped sidecar."""

import pytest
from mesh_support import call_entry, open_loop_load, pair_topology, run, running_in_process_mesh, statuses

from sandbox.mesh.runtime.loadgen import summarize

pytestmark = pytest.mark.integration


def test_in_process_mesh_retries_and_recovers_a_stopped_sidecar(tmp_path):
    path = pair_topology(
        tmp_path,
        b_behaviour="error_rate: 0.3\n",
        b_traffic="retry:\n  attempts: 3\n  retry_on: [5xx, connect-failure]\n  budget_ratio: 1.0\n",
    )

    async def body():
        async with running_in_process_mesh(path) as mesh:
            # 400 requests at a rate one event loop carries on a busy 2-core machine; with 3 retries
            # the expected failures are 400 x 0.3^4 ~ 3, so > 98% success fails by chance well under 1%.
            effective = summarize(await open_loop_load(mesh, rate=100, seconds=4.0))
            b = (await mesh.service_stats("b"))[0]
            await mesh.reset_behaviour("b")
            await mesh.kill("sidecar", "b")
            down = statuses(await call_entry(mesh, 2))
            await mesh.restart("sidecar", "b")
            up = statuses(await call_entry(mesh, 2))
            return effective, b, down, up

    effective, b, down, up = run(body())
    assert effective["success_rate"] > 0.98
    assert 0.6 < b["by_status"]["200"] / b["requests"] < 0.8
    assert down == {502: 2}
    assert up == {200: 2}
