"""Edges of one sidecar and of the scenario actions: a hung app is cut off with 504 UT, a bad admin body is a 400,
and `heal` of one replica leaves the others as they were."""

import pytest
from mesh_support import access_log, run, running_in_process_mesh, write_topology

from sandbox.mesh.dataplane import http1
from sandbox.mesh.runtime.commands import apply_command, parse_command

pytestmark = pytest.mark.integration

TOPOLOGY = """
    name: pair
    entry: a
    services:
      - {name: a, calls: [b], mtls: PERMISSIVE}
      - {name: b, replicas: 2, mtls: PERMISSIVE}
"""


def test_a_hung_app_is_answered_with_504_ut_and_a_bad_admin_body_with_400(tmp_path):
    path = write_topology(tmp_path, TOPOLOGY)

    async def body():
        async with running_in_process_mesh(path) as mesh:
            await mesh.set_behaviour("b", 0, hang=True)
            sidecar = mesh.sidecars[("b", 0)]
            sidecar.app_timeout = 0.3
            hung = await http1.simple_request(
                "127.0.0.1", mesh.replicas[("b", 0)].inbound_port, headers={"host": "b"}, timeout=10
            )
            b_log = await access_log(mesh, "b")
            bad_admin = [await mesh_admin_post(mesh, body) for body in (b"nope", b'{"port": "x"}', b"{}")]
            still_there = await mesh.sidecar_admin("b", 0, "/ready")
            return hung, b_log, bad_admin, still_there

    hung, b_log, bad_admin, still_there = run(body(), 30)
    assert hung.status == 504
    assert any(r["direction"] == "inbound" and r["status"] == 504 and "UT" in r["flags"] for r in b_log), b_log
    assert [r.status for r in bad_admin] == [400, 400, 400]
    assert still_there.status == 200


async def mesh_admin_post(mesh, body: bytes) -> http1.Response:
    port = mesh.replicas[("b", 0)].admin_port
    return await http1.simple_request("127.0.0.1", port, "POST", "/app-port", headers=mesh.admin_headers(), body=body)


def test_heal_of_one_replica_leaves_the_other_failing(tmp_path):
    path = write_topology(tmp_path, TOPOLOGY)

    async def body():
        async with running_in_process_mesh(path) as mesh:
            await apply_command(mesh, parse_command({"action": "fail", "service": "b", "percent": 100}, mesh.topology))
            await apply_command(mesh, parse_command({"action": "heal", "service": "b", "replica": 1}, mesh.topology))
            return [s["behaviour"]["error_rate"] for s in await mesh.service_stats("b")]

    assert run(body(), 30) == [1.0, 0.0]
