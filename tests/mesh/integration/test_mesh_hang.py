"""A hanging service: the caller's request timeout answers 504 UT instead of waiting forever."""

import time

import pytest
from mesh_support import access_log, call_entry, pair_topology, run, running_mesh, statuses

pytestmark = pytest.mark.integration


def test_a_hanging_service_is_cut_off_by_the_callers_timeout(tmp_path):
    path = pair_topology(tmp_path, b_traffic="timeout: 300ms\n")

    async def body():
        async with running_mesh(path) as mesh:
            await mesh.set_behaviour("b", hang=True)
            started = time.monotonic()
            hung = statuses(await call_entry(mesh, 2))
            elapsed = time.monotonic() - started
            a_log = await access_log(mesh, "a")
            await mesh.set_behaviour("b", hang=False)
            after = statuses(await call_entry(mesh, 2))
            return hung, elapsed, a_log, after

    hung, elapsed, a_log, after = run(body())
    assert hung == {502: 2}
    assert elapsed >= 0.55  # two calls, each waited out its 300 ms (no upper bound: the machine may be loaded)
    timed_out = [r for r in a_log if r["direction"] == "outbound" and r["status"] == 504]
    assert len(timed_out) == 2 and all("UT" in r["flags"] for r in timed_out)
    assert after == {200: 2}
