"""A local process without the experiment's tokens cannot take over a mesh, and learns nothing from trying.

Each test plays the stranger against a real running mesh (control plane on its Unix socket, sidecars,
services) and then checks that the mesh is as it was: b's real sidecar still connected and getting
its updates, traffic still reaching b, b's behaviour untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat

import pytest
from cryptography import x509
from mesh_support import (
    call_entry,
    pair_topology,
    run,
    running_in_process_mesh,
    running_mesh,
    statuses,
)

from sandbox.mesh.config.model import Request
from sandbox.mesh.config.topology import load_topology
from sandbox.mesh.controlplane.ca import make_csr, new_private_key_pem, public_key_der
from sandbox.mesh.dataplane import http1
from sandbox.mesh.runtime.supervisor import InProcessMesh

pytestmark = pytest.mark.integration

# Anything here in a reply would be something the stranger learned.
SECRETS_IN_REPLIES = ("cert_pem", "PRIVATE KEY", "CERTIFICATE", "endpoints", "traffic", "authorization", "sidecars")


async def stranger_says(mesh, message: dict) -> list[dict]:
    """Send one line on the control socket as a local process would; every line it gets back until EOF."""
    reader, writer = await asyncio.open_unix_connection(mesh.control_path, limit=1 << 22)
    try:
        writer.write(json.dumps(message).encode() + b"\n")
        lines = []
        while line := await asyncio.wait_for(reader.readline(), 5):
            lines.append(json.loads(line))
        return lines
    finally:
        writer.close()


def assert_refused(replies: list[dict]) -> None:
    assert replies == [{"type": "refused"}], replies
    assert not any(word in json.dumps(replies) for word in SECRETS_IN_REPLIES)


def csr_for(mesh, service: str | None) -> str:
    spiffe_id = mesh.topology.spiffe_id(service) if service else None
    return make_csr(new_private_key_pem(), spiffe_id).decode()


def b_session(status: dict) -> dict:
    return next(s for s in status["sidecars"] if s["service"] == "b")


@contextlib.asynccontextmanager
async def listener_counting_connections():
    """A stranger's own HTTP listener, counting who connects to it."""
    accepted = []

    async def on_connection(reader, writer):
        accepted.append(writer.get_extra_info("peername"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nstranger")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()


# ---------------------------------------------------------------------- the control channel


def test_the_control_socket_lives_in_a_directory_only_its_owner_can_enter(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_in_process_mesh(path) as mesh:
            return os.stat(mesh.run_dir).st_mode, os.stat(mesh.control_path).st_mode

    dir_mode, socket_mode = run(body())
    assert stat.S_IMODE(dir_mode) == 0o700
    assert stat.S_ISSOCK(socket_mode) and stat.S_IMODE(socket_mode) & 0o077 == 0


def test_the_control_plane_will_not_listen_where_others_can_reach_its_socket(tmp_path):
    from sandbox.mesh.controlplane.control_plane import ControlPlane

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    plane = ControlPlane(load_topology(pair_topology(tmp_path)))

    with pytest.raises(PermissionError, match="only its owner"):
        run(plane.start(str(shared / "control.sock")))
    assert not (shared / "control.sock").exists()


def test_a_certificate_is_refused_for_any_identity_without_the_operator_token(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_in_process_mesh(path) as mesh:
            wrong_tokens = [{}, {"token": ""}, {"token": "guess"}, {"token": mesh.bootstrap_tokens[("b", 0)]}]
            replies = [
                await stranger_says(
                    mesh,
                    {
                        "type": "op",
                        "op": "issue_client_cert",
                        "service": service,
                        "csr": csr_for(mesh, service),
                        **token,
                    },
                )
                for service in ("b", "a", "loadgen")
                for token in wrong_tokens
            ]
            # With the operator token it works, and even then no private key comes back.
            granted = await stranger_says_then_reads_one(
                mesh,
                {
                    "type": "op",
                    "op": "issue_client_cert",
                    "service": "b",
                    "csr": csr_for(mesh, "b"),
                    "token": mesh.operator_token,
                },
            )
            return replies, granted

    replies, granted = run(body())
    for reply in replies:
        assert_refused(reply)
    assert granted["ok"] and "BEGIN CERTIFICATE" in granted["cert_pem"]
    assert "PRIVATE KEY" not in json.dumps(granted)


async def stranger_says_then_reads_one(mesh, message: dict) -> dict:
    reader, writer = await asyncio.open_unix_connection(mesh.control_path, limit=1 << 22)
    try:
        writer.write(json.dumps(message).encode() + b"\n")
        return json.loads(await asyncio.wait_for(reader.readline(), 5))
    finally:
        writer.close()


def test_hello_as_b_without_b_s_token_is_refused_and_b_keeps_getting_its_updates(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_in_process_mesh(path) as mesh:
            before = b_session(await mesh.status())
            port = before["inbound_port"]
            hello = {"type": "hello", "service": "b", "replica": 0, "inbound_port": port}
            attempts = [
                {**hello, "csr": csr_for(mesh, "b")},  # no token
                {**hello, "csr": csr_for(mesh, "b"), "token": "not-the-token"},
                {**hello, "csr": csr_for(mesh, "b"), "token": mesh.operator_token},  # the operator is not b
                # a's own bootstrap token, saying it is b: the token, not the message, names the replica
                {**hello, "csr": csr_for(mesh, "b"), "token": mesh.bootstrap_tokens[("a", 0)]},
                {**hello, "csr": csr_for(mesh, None), "token": mesh.bootstrap_tokens[("a", 0)]},
                # b's token but a CSR asking for a's identity: the CA signs for the token's identity or not at all
                {**hello, "csr": csr_for(mesh, "a"), "token": mesh.bootstrap_tokens[("b", 0)]},
                # b's token, but a CSR whose signature does not match its key
                {
                    **hello,
                    "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
                    "token": mesh.bootstrap_tokens[("b", 0)],
                },
            ]
            replies = [await stranger_says(mesh, attempt) for attempt in attempts]
            # The operator changes b's policy: b's real sidecar must be the one that gets and ACKs it.
            await mesh.set_mtls_mode("b", "PERMISSIVE")
            after = b_session(await mesh.wait_in_sync())
            b_config = json.loads((await mesh.sidecar_admin("b", 0, "/config")).body)
            traffic = statuses(await call_entry(mesh, 3))
            return before, replies, after, b_config, traffic

    before, replies, after, b_config, traffic = run(body())
    for reply in replies:
        assert_refused(reply)
    assert after["connected"] and after["in_sync"] and after["inbound_port"] == before["inbound_port"]
    assert after["acked_version"] > before["acked_version"]
    assert b_config["mtls_mode"] == "PERMISSIVE" and b_config["version"] == after["acked_version"]
    assert traffic == {200: 3}


def test_a_stranger_cannot_register_its_own_port_as_b(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_in_process_mesh(path) as mesh, listener_counting_connections() as (port, accepted):
            version = (await mesh.status())["version"]
            register = {"type": "op", "op": "register_endpoint", "service": "b", "replica": 7, "port": port}
            replies = [
                await stranger_says(mesh, register),
                await stranger_says(mesh, {**register, "token": mesh.bootstrap_tokens[("b", 0)]}),
                await stranger_says(mesh, {**register, "token": "x" * 43}),
            ]
            traffic = [r.body for r in await call_entry(mesh, 5)]
            return replies, version, (await mesh.status())["version"], traffic, accepted

    replies, version_before, version_after, traffic, accepted = run(body())
    for reply in replies:
        assert_refused(reply)
    assert version_after == version_before  # nothing was pushed
    assert accepted == []
    assert all(json.loads(body)["calls"] == [{"service": "b", "status": 200}] for body in traffic), traffic


def test_a_stranger_cannot_push_an_authorization_policy(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_in_process_mesh(path) as mesh:
            version = (await mesh.status())["version"]
            deny_all = {
                "type": "op",
                "op": "set_authorization",
                "service": "b",
                "authorization": {"deny": [{"sources": ["*"]}]},
            }
            replies = [
                await stranger_says(mesh, deny_all),
                await stranger_says(mesh, {**deny_all, "token": mesh.bootstrap_tokens[("a", 0)]}),
                await stranger_says(mesh, {**deny_all, "token": mesh.operator_token[:-1]}),
            ]
            after = (await mesh.status())["version"]
            traffic = statuses(await call_entry(mesh, 3))
            return replies, version, after, traffic

    replies, version_before, version_after, traffic = run(body())
    for reply in replies:
        assert_refused(reply)
    assert version_after == version_before
    assert traffic == {200: 3}


def test_renewals_and_acks_before_a_valid_hello_are_refused(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_in_process_mesh(path) as mesh:
            before = b_session(await mesh.status())
            replies = [
                await stranger_says(mesh, {"type": "renew", "csr": csr_for(mesh, "b")}),
                await stranger_says(mesh, {"type": "ack", "version": 10**6}),
                await stranger_says(mesh, {"type": "nack", "version": before["pushed_version"], "reason": "x"}),
            ]
            return before, replies, b_session(await mesh.status())

    before, replies, after = run(body())
    for reply in replies:
        assert_refused(reply)
    assert after["renewals"] == before["renewals"] and after["nack"] is None and after["in_sync"]


def test_a_connection_that_never_authenticates_is_dropped(tmp_path, monkeypatch):
    from sandbox.mesh.controlplane import control_plane

    monkeypatch.setattr(control_plane, "AUTHENTICATE_WITHIN", 0.2)
    path = pair_topology(tmp_path)

    async def body():
        async with running_in_process_mesh(path) as mesh:
            reader, writer = await asyncio.open_unix_connection(mesh.control_path)
            try:
                return await asyncio.wait_for(reader.read(), 10)  # b"" once the control plane hangs up
            finally:
                writer.close()

    assert run(body()) == b""


# ---------------------------------------------------------------------- keys stay where they are made


def test_private_keys_never_cross_the_control_socket_and_rotation_makes_a_new_key(tmp_path):
    path = pair_topology(tmp_path)
    sent: list[bytes] = []

    async def body():
        mesh = InProcessMesh(load_topology(path), cert_ttl=2)
        await mesh.start()
        try:
            plane = mesh.control_plane
            original_push = plane._push

            def recording_push(session):
                # Everything the control plane pushes goes through here; record the line it writes.
                writer = session.writer
                if writer is not None:
                    real_write = writer.write
                    writer.write = lambda data: (sent.append(data), real_write(data))[1]
                    try:
                        original_push(session)
                    finally:
                        writer.write = real_write

            plane._push = recording_push
            sidecar = mesh.sidecars[("b", 0)]
            first = sidecar.applied.config.certificate["cert_pem"]
            for _ in range(200):  # until b has renewed at half of its 2 s lifetime (bounded: 20 s)
                if b_session(await mesh.status())["renewals"] >= 1 and sent:
                    break
                await asyncio.sleep(0.1)
            current = sidecar.applied.config.certificate["cert_pem"]
            traffic = statuses(await call_entry(mesh, 2))
            return first, current, b_session(await mesh.status()), traffic
        finally:
            await mesh.stop()

    first, current, session, traffic = run(body())
    assert session["renewals"] >= 1 and sent
    assert not any(b"PRIVATE KEY" in line or b"key_pem" in line for line in sent)

    def key_of(pem: str) -> bytes:
        return public_key_der(x509.load_pem_x509_certificate(pem.encode()).public_key())

    assert key_of(current) != key_of(first)  # a renewal is a new key, made by the sidecar
    assert traffic == {200: 2}


# ---------------------------------------------------------------------- admin APIs


async def _b_inbound(mesh, method: str, target: str, body: bytes = b"") -> http1.Response:
    """A request to b's inbound as a mesh member would send it (mTLS as `a`)."""
    context = await mesh.client_ssl_context("a")
    pool = http1.ConnectionPool("127.0.0.1", mesh.replicas[("b", 0)].inbound_port, ssl_context=context)
    try:
        return await asyncio.wait_for(pool.request(Request(method, target, body=body), "b"), 10)
    finally:
        pool.close()


def test_the_workload_admin_api_is_not_reachable_through_the_data_path(tmp_path):
    path = pair_topology(tmp_path)
    fail = json.dumps({"error_rate": 1.0}).encode()

    async def body():
        async with running_in_process_mesh(path) as mesh:
            through_inbound = [
                (await _b_inbound(mesh, "POST", target, fail)).status
                for target in (
                    "/_mesh/behaviour",
                    "//_mesh/behaviour",
                    "/%5Fmesh/behaviour",
                    "/x/../_mesh/behaviour",
                    "http://b/_mesh/behaviour",
                    "/_mesh/wiring",
                    "/_mesh/stats",
                )
            ]
            behaviour = (await mesh.service_stats("b"))[0]["behaviour"]
            traffic = statuses(await call_entry(mesh, 3))
            return through_inbound, behaviour, traffic

    through_inbound, behaviour, traffic = run(body())
    assert through_inbound == [404] * 7
    assert behaviour["error_rate"] == 0
    assert traffic == {200: 3}


def test_the_workload_admin_api_needs_the_operator_token(tmp_path):
    path = pair_topology(tmp_path)
    fail = json.dumps({"error_rate": 1.0}).encode()

    async def body():
        async with running_in_process_mesh(path) as mesh:
            app = mesh.replicas[("b", 0)].app_port
            refused = []
            for headers in (
                {},
                {"authorization": "Bearer wrong"},
                {"authorization": mesh.operator_token},
                {"authorization": f"Bearer {mesh.bootstrap_tokens[('b', 0)]}"},
            ):
                for method, target, data in (
                    ("POST", "/_mesh/behaviour", fail),
                    ("GET", "/_mesh/stats", b""),
                    ("POST", "/_mesh/wiring", b'{"outbound_port": 9}'),
                ):
                    response = await http1.simple_request("127.0.0.1", app, method, target, headers=headers, body=data)
                    refused.append((response.status, response.body))
            behaviour = (await mesh.service_stats("b"))[0]["behaviour"]  # with the token
            traffic = statuses(await call_entry(mesh, 3))
            return refused, behaviour, traffic

    refused, behaviour, traffic = run(body())
    assert {status for status, _ in refused} <= {401, 403} and len(refused) == 12
    assert not any(b"behaviour" in body or b"outbound_port" in body for _, body in refused)
    assert behaviour["error_rate"] == 0
    assert traffic == {200: 3}


def test_the_sidecar_admin_api_needs_the_operator_token_except_metrics_and_ready(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_in_process_mesh(path) as mesh, listener_counting_connections() as (port, accepted):
            admin = mesh.replicas[("b", 0)].admin_port
            redirect = json.dumps({"port": port}).encode()
            refused = []
            for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {mesh.operator_token}"}):
                for method, target, data in (
                    ("POST", "/app-port", redirect),
                    ("GET", "/config", b""),
                    ("GET", "/stats", b""),
                    ("GET", "/access-log", b""),
                ):
                    response = await http1.simple_request(
                        "127.0.0.1", admin, method, target, headers=headers, body=data
                    )
                    refused.append((response.status, response.body))
            open_paths = [
                (await http1.simple_request("127.0.0.1", admin, "GET", p)).status for p in ("/metrics", "/ready")
            ]
            # The data path never reaches the sidecar's admin listener: this goes to b's app, which has no such path.
            through_inbound = await _b_inbound(mesh, "POST", "/app-port", redirect)
            traffic = [r.body for r in await call_entry(mesh, 3)]
            app_port = json.loads((await mesh.sidecar_admin("b", 0, "/config")).body)["app_port"]
            return refused, open_paths, through_inbound, traffic, accepted, app_port, mesh.replicas[("b", 0)].app_port

    refused, open_paths, through_inbound, traffic, accepted, app_port, real_app_port = run(body())
    assert {status for status, _ in refused} <= {401, 403} and len(refused) == 12
    assert not any(b"app_port" in body or b"spiffe" in body for _, body in refused)
    assert open_paths == [200, 200]
    assert through_inbound.body != b"ok\n"  # b's app answered, not b's sidecar admin
    assert app_port == real_app_port and accepted == []
    assert all(json.loads(body)["calls"] == [{"service": "b", "status": 200}] for body in traffic), traffic


# ---------------------------------------------------------------------- separate processes


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _limits_of(pid: int) -> dict[str, tuple[str, str]]:
    """/proc/<pid>/limits as {name: (soft, hard)}."""
    limits = {}
    with open(f"/proc/{pid}/limits") as handle:
        next(handle)  # the header
        for line in handle:
            name, soft, hard = line[:26].strip(), *line[26:].split()[:2]
            limits[name] = (soft, hard)
    return limits


def test_each_component_process_runs_bounded_and_got_its_secrets_off_the_command_line(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_mesh(path) as mesh:
            pids = {key: child.process.pid for key, child in mesh.children.items()}
            limits = {key: _limits_of(pid) for key, pid in pids.items()}
            exposed = {key: _read(f"/proc/{pid}/cmdline") + _read(f"/proc/{pid}/environ") for key, pid in pids.items()}
            secrets = [mesh.operator_token, *mesh.bootstrap_tokens.values()]
            # The control plane in its own process refuses a stranger as the in-process one does.
            replies = await stranger_says(
                mesh,
                {
                    "type": "hello",
                    "service": "b",
                    "replica": 0,
                    "inbound_port": 1,
                    "csr": csr_for(mesh, "b"),
                    "token": "guess",
                },
            )
            in_sync = b_session(await mesh.status())["in_sync"]
            return limits, exposed, secrets, replies, in_sync

    limits, exposed, secrets, replies, in_sync = run(body())
    assert set(limits) >= {("sidecar", "b", 0), ("service", "b", 0), ("control_plane", "control-plane", 0)}
    for key, found in limits.items():
        assert found["Max open files"] == ("1024", "1024"), (key, found)
        assert found["Max address space"] == (str(1 << 30), str(1 << 30)), (key, found)
        assert found["Max cpu time"] == ("14400", "14400"), (key, found)
    for key, text in exposed.items():
        assert not any(token.encode() in text for token in secrets), key
    assert_refused(replies)
    assert in_sync
