"""An app that answers with broken HTTP framing: the caller gets an error with a logged flag, no connection leaks."""

import asyncio

import pytest
from mesh_support import access_log, call_entry, pair_topology, run, running_in_process_mesh, statuses

pytestmark = pytest.mark.integration


def test_a_bad_chunk_size_from_the_app_is_a_logged_503_uc_and_frees_the_connection(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        hung_up = []

        async def broken_app(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n")
            await writer.drain()
            await reader.read()  # until the sidecar gives the connection up
            hung_up.append(True)
            writer.close()

        server = await asyncio.start_server(broken_app, "127.0.0.1", 0)
        async with running_in_process_mesh(path) as mesh:
            sidecar = mesh.sidecars[("b", 0)]
            sidecar.set_app_port(server.sockets[0].getsockname()[1])
            answers = await call_entry(mesh, 2)
            b_log = await access_log(mesh, "b")
            for _ in range(100):
                if len(hung_up) == 2:
                    break
                await asyncio.sleep(0.05)
            return answers, b_log, len(hung_up), sidecar._app_pool.open_count
            server.close()

    answers, b_log, hung_up, open_count = run(body(), 30)
    assert statuses(answers) == {502: 2}
    assert all(b"call to b failed: 503" in r.body for r in answers)
    inbound = [r for r in b_log if r["direction"] == "inbound"]
    assert [(r["status"], r["flags"]) for r in inbound] == [(503, "UC"), (503, "UC")]
    assert all("bad chunk size" in r["detail"] for r in inbound), inbound
    assert hung_up == 2 and open_count == 0
