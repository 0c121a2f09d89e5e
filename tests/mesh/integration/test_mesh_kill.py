"""Killing B's sidecar (a real process exit) gives connect failures at A; restarting it brings recovery."""

import pytest
from mesh_support import access_log, call_entry, pair_topology, pid_alive, run, running_mesh, statuses

pytestmark = pytest.mark.integration


def test_killed_sidecar_gives_connect_failure_at_the_caller_and_recovers_on_restart(tmp_path):
    path = pair_topology(tmp_path, b_traffic="retry:\n  attempts: 2\n  retry_on: [connect-failure]\n")

    async def body():
        async with running_mesh(path) as mesh:
            before = statuses(await call_entry(mesh, 2))
            pid = await mesh.kill("sidecar", "b")
            dead = not pid_alive(pid)
            during = statuses(await call_entry(mesh, 3))
            a_log = await access_log(mesh, "a")
            await mesh.restart("sidecar", "b")
            after = statuses(await call_entry(mesh, 3))
            return before, dead, during, a_log, after, pid, list(mesh.exits)

    before, dead, during, a_log, after, pid, exits = run(body())
    assert before == {200: 2}
    assert dead
    # The supervisor saw the exit: SIGKILL (-9), flagged as the learner's doing.
    assert [(e["kind"], e["service"], e["pid"], e["code"], e["expected"]) for e in exits] == [
        ("sidecar", "b", pid, -9, True)
    ]
    assert during == {502: 3}
    failed = [r for r in a_log if r["direction"] == "outbound" and r["status"] == 503]
    assert len(failed) == 3
    # Each call was tried 3 times (2 retries on connect-failure), then flagged UF + URX.
    assert all("UF" in r["flags"] and "URX" in r["flags"] and r["attempts"] == 3 for r in failed), failed
    assert all("connection" in r["detail"].lower() for r in failed)
    assert after == {200: 3}


def test_killed_service_behind_a_live_sidecar_is_a_503_from_that_sidecar(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_mesh(path) as mesh:
            await mesh.kill("service", "b")
            during = statuses(await call_entry(mesh, 2))
            b_log = await access_log(mesh, "b")
            await mesh.restart("service", "b")
            after = statuses(await call_entry(mesh, 2))
            return during, b_log, after

    during, b_log, after = run(body())
    assert during == {502: 2}
    inbound = [r for r in b_log if r["direction"] == "inbound" and r["status"] == 503]
    assert len(inbound) == 2 and all("UF" in r["flags"] for r in inbound)
    assert after == {200: 2}
