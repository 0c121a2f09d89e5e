"""A sidecar NACKs a malformed control-plane message and keeps applying later pushes; it reconnects when cut off."""

import asyncio
import json

import pytest
from mesh_support import call_entry, pair_topology, run, running_in_process_mesh, statuses

pytestmark = pytest.mark.integration

MALFORMED = [
    b'{"type": "config", "config": {}}\n',  # no version
    b'{"type": "config", "version": "7", "config": {}}\n',
    b'{"type": "config", "version": 7, "config": "nope"}\n',
    b'{"type": "config", "version": 8, "config": {"version": 8}}\n',
    b"[1, 2]\n",
    b"not json at all\n",
]


async def config_once(mesh, condition, timeout: float = 10.0) -> dict:
    """b's /config as soon as `condition` holds for it (the sidecar reads its control messages on its own time)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        config = json.loads((await mesh.sidecar_admin("b", 0, "/config")).body)
        if condition(config) or asyncio.get_running_loop().time() > deadline:
            return config
        await asyncio.sleep(0.02)


def test_a_malformed_control_message_is_nacked_and_the_next_good_push_applies(tmp_path):
    path = pair_topology(tmp_path, b_mtls="PERMISSIVE")

    async def body():
        async with running_in_process_mesh(path) as mesh:
            session = mesh.control_plane.sessions[("b", 0)]
            for line in MALFORMED:
                session.writer.write(line)
            after_garbage = await config_once(mesh, lambda c: "JSON" in ((c["last_nack"] or {}).get("reason") or ""))
            await mesh.set_mtls_mode("b", "STRICT")
            status = await mesh.wait_in_sync()
            config = json.loads((await mesh.sidecar_admin("b", 0, "/config")).body)
            served = statuses(await call_entry(mesh, 2))
            return after_garbage, status, config, served

    after_garbage, status, config, served = run(body(), 30)
    assert "JSON" in after_garbage["last_nack"]["reason"]  # the last of them, refused with its reason
    assert after_garbage["mtls_mode"] == "PERMISSIVE"
    b = next(s for s in status["sidecars"] if s["service"] == "b")
    assert b["connected"] and b["in_sync"]
    assert config["mtls_mode"] == "STRICT" and config["version"] == b["pushed_version"]
    assert served == {200: 2}


def test_a_sidecar_reconnects_after_losing_the_control_plane_connection(tmp_path):
    path = pair_topology(tmp_path, b_mtls="PERMISSIVE")

    async def body():
        async with running_in_process_mesh(path) as mesh:
            session = mesh.control_plane.sessions[("b", 0)]
            certificate = session.certificate
            session.writer.transport.abort()
            await mesh.wait_in_sync()  # waits until b is connected again
            await mesh.set_mtls_mode("b", "STRICT")
            await mesh.wait_in_sync()
            config = json.loads((await mesh.sidecar_admin("b", 0, "/config")).body)
            return config, session.certificate is certificate

    config, same_certificate = run(body(), 30)
    assert config["mtls_mode"] == "STRICT"
    assert same_certificate  # a reconnect is not a reason to issue (and roll out) a new certificate


def test_the_control_plane_ignores_malformed_lines_from_a_sidecar_and_keeps_its_session(tmp_path):
    path = pair_topology(tmp_path, b_mtls="PERMISSIVE")

    async def body():
        async with running_in_process_mesh(path) as mesh:
            session = mesh.control_plane.sessions[("b", 0)]
            writer = session.writer
            mesh.sidecars[("b", 0)]._control_writer.write(
                b'[1, 2]\n{"type": "ack"}\n{"type": "nack", "version": "x"}\nnot json\n'
            )
            await asyncio.sleep(0.2)
            await mesh.set_mtls_mode("b", "STRICT")
            status = await mesh.wait_in_sync()
            return session.writer is writer, status

    same_session, status = run(body(), 30)
    assert same_session  # the connection was not dropped
    b = next(s for s in status["sidecars"] if s["service"] == "b")
    assert b["in_sync"] and b["nack"] is None
