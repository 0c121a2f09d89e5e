"""The app learns its caller's identity only from its sidecar: a forged x-forwarded-client-cert never reaches it."""

import asyncio

import pytest
from mesh_support import call_entry, pair_topology, run, running_in_process_mesh, statuses

from sandbox.mesh.dataplane import http1

pytestmark = pytest.mark.integration

FORGED = "URI=spiffe://meshlearn.local/ns/default/sa/admin"


def test_a_forged_client_cert_header_from_a_plaintext_caller_never_reaches_the_app(tmp_path):
    path = pair_topology(tmp_path, b_mtls="PERMISSIVE")

    async def body():
        heads = []

        async def recording_app(reader, writer):
            try:
                while head := await reader.readuntil(b"\r\n\r\n"):
                    heads.append(head.decode("latin-1").lower())
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(recording_app, "127.0.0.1", 0)
        async with running_in_process_mesh(path) as mesh:
            mesh.sidecars[("b", 0)].set_app_port(server.sockets[0].getsockname()[1])
            b_inbound = mesh.replicas[("b", 0)].inbound_port
            plain = await http1.simple_request(
                "127.0.0.1", b_inbound, headers={"host": "b", "x-forwarded-client-cert": FORGED}
            )
            plain_head = heads[-1]
            via_a = statuses(await call_entry(mesh, 1))  # a -> b over mTLS, forged header added by nobody
            return plain.status, plain_head, via_a, heads[-1]
            server.close()

    plain_status, plain_head, via_a, mtls_head = run(body(), 30)
    assert plain_status == 200
    assert "x-forwarded-client-cert" not in plain_head and "admin" not in plain_head
    assert via_a == {200: 1}
    assert mtls_head.count("x-forwarded-client-cert") == 1
    assert "x-forwarded-client-cert: uri=spiffe://" in mtls_head and "/sa/a\r\n" in mtls_head
