"""The shop topology: replicas share the load, and a failing replica is ejected by outlier detection."""

import pytest
from mesh_support import open_loop_load, run, running_mesh, stats

from sandbox.mesh.runtime.loadgen import summarize
from sandbox.mesh.runtime.supervisor import REPO_ROOT

pytestmark = pytest.mark.integration
SHOP = REPO_ROOT / "sandbox" / "mesh" / "topologies" / "shop.yaml"


def test_shop_balances_catalog_replicas_and_ejects_a_failing_one():
    async def body():
        async with running_mesh(SHOP) as mesh:
            await mesh.set_behaviour("catalog", 0, error_rate=1.0, error_status=503)
            effective = summarize(await open_loop_load(mesh, rate=60, seconds=3.0))
            catalog = await mesh.service_stats("catalog")
            return effective, catalog, await stats(mesh, "frontend")

    # How fast shop starts is a benchmark figure (bench/), not something a busy machine can promise here.
    effective, catalog, frontend = run(body())
    assert effective["success_rate"] > 0.97, effective  # retries, then ejection, hide the bad replica
    assert frontend["destinations"]["catalog"]["ejections"] >= 1
    bad, *good = catalog
    assert bad["by_status"].get("503", 0) >= 5 and "200" not in bad["by_status"]
    # Once ejected, the bad replica gets (almost) nothing while the two good ones share the load.
    assert all(g["by_status"].get("200", 0) > 5 * bad["requests"] for g in good), catalog
