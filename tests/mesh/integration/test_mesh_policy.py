"""Authorization denies a caller with 403 RBAC; a bad policy push is NACKed and the old config keeps serving."""

import json

import pytest
from mesh_support import access_log, call_entry, pair_topology, run, running_mesh, statuses

from sandbox.mesh.runtime.supervisor import MeshError

pytestmark = pytest.mark.integration


def test_a_denied_caller_gets_403_rbac(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_mesh(path) as mesh:
            await mesh.deny("b", "a")
            await mesh.wait_in_sync()
            denied = await call_entry(mesh, 2)
            a_log = await access_log(mesh, "a")
            b_log = await access_log(mesh, "b")
            await mesh.set_authorization("b", None)
            await mesh.wait_in_sync()
            allowed = statuses(await call_entry(mesh, 2))
            return denied, a_log, b_log, allowed

    denied, a_log, b_log, allowed = run(body())
    assert statuses(denied) == {502: 2}
    assert all(b"call to b failed: 403" in r.body for r in denied)
    rbac = [r for r in b_log if r["direction"] == "inbound" and r["status"] == 403]
    assert len(rbac) == 2 and all(r["flags"] == "RBAC" and r["source"] == "a" for r in rbac)
    assert [r["status"] for r in a_log if r["direction"] == "outbound"] == [403, 403]
    assert allowed == {200: 2}


def test_a_bad_policy_is_nacked_and_the_old_config_keeps_serving(tmp_path):
    path = pair_topology(tmp_path, b_traffic="retry:\n  attempts: 2\n")

    async def body():
        async with running_mesh(path) as mesh:
            old_version = json.loads((await mesh.sidecar_admin("a", 0, "/config")).body)["version"]
            refused_up_front = None
            try:
                await mesh.set_traffic("b", {"retry": {"attempts": -1}})
            except MeshError as exc:
                refused_up_front = str(exc)
            # Pushed unchecked, as a buggy control plane would: each sidecar must refuse it.
            await mesh.set_traffic("b", {"retry": {"attempts": -1}}, validate=False)
            status = await mesh.wait_in_sync()
            config = json.loads((await mesh.sidecar_admin("a", 0, "/config")).body)
            served = statuses(await call_entry(mesh, 3))
            return refused_up_front, status, old_version, config, served

    refused_up_front, status, old_version, config, served = run(body())
    assert refused_up_front and "retry.attempts" in refused_up_front
    nacks = [s["nack"] for s in status["sidecars"]]
    assert len(nacks) == 2 and all(n and "retry.attempts" in n["reason"] for n in nacks), nacks
    assert all(s["acked_version"] < s["pushed_version"] for s in status["sidecars"])
    assert config["version"] == old_version  # still running the last good version
    assert "retry.attempts" in config["last_nack"]["reason"]
    assert served == {200: 3}


def test_after_an_unchecked_bad_policy_later_changes_still_apply(tmp_path):
    path = pair_topology(tmp_path, b_mtls="PERMISSIVE")

    async def body():
        async with running_mesh(path) as mesh:
            await mesh.set_traffic("b", {"retry": {"attempts": -1}}, validate=False)
            refused = await mesh.wait_in_sync()
            # Valid changes afterwards (a policy every sidecar gets, then a mode): every sidecar accepts them.
            await mesh.set_traffic("b", {"retry": {"attempts": 2}})
            await mesh.set_mtls_mode("b", "STRICT")
            status = await mesh.wait_in_sync()
            b_config = json.loads((await mesh.sidecar_admin("b", 0, "/config")).body)
            served = statuses(await call_entry(mesh, 2))
            return refused, status, b_config, served

    refused, status, b_config, served = run(body())
    assert all(s["nack"] and "retry.attempts" in s["nack"]["reason"] for s in refused["sidecars"])
    assert all(s["in_sync"] and s["acked_version"] == s["pushed_version"] for s in status["sidecars"]), status
    assert all(s["nack"] is None for s in status["sidecars"])  # the later ACK supersedes the refusal
    assert b_config["mtls_mode"] == "STRICT"
    assert served == {200: 2}
