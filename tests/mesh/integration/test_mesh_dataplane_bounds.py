"""A sidecar's inbound stays bounded and honest: slow clients, a TLS client at a plaintext port, no file descriptors."""

import asyncio
import json
import os
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mesh_support import (
    call_entry,
    pair_topology,
    run,
    running_in_process_mesh,
    stats,
    statuses,
)

from sandbox.mesh.dataplane import http1
from sandbox.mesh.dataplane.listener import ListenerLimits

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.read()
    except ConnectionError:
        return b""


def test_slow_clients_at_a_sidecar_inbound_are_closed_and_mesh_traffic_still_flows(tmp_path):
    """300 slowloris clients (plaintext heads that never end) at b's PERMISSIVE inbound, capped at 50 and timed
    out after 1 s: the real A -> B calls are answered meanwhile, and every slow client is closed."""
    path = pair_topology(tmp_path, b_mtls="PERMISSIVE")

    async def body():
        async with running_in_process_mesh(path) as mesh:
            b = mesh.sidecars[("b", 0)]
            b.inbound_listener.limits = ListenerLimits(max_connections=50, read_timeout=1.0, idle_timeout=1.0)
            clients = []
            for _ in range(300):
                reader, writer = await asyncio.open_connection("127.0.0.1", mesh.replicas[("b", 0)].inbound_port)
                writer.write(b"GET / HTTP/1.1\r\nHost: b\r\nX-Slow: ")
                clients.append((reader, writer))
            try:
                answered = statuses(await call_entry(mesh, 5))
                said = await asyncio.wait_for(asyncio.gather(*(_closed_by_server(r) for r, _ in clients)), 60)
                after = statuses(await call_entry(mesh, 5))
            finally:
                for _, writer in clients:
                    writer.close()
            return answered, said, after, dict(b.inbound_listener.counts)

    answered, said, after, counts = run(body(), timeout=120)
    assert answered == {200: 5} and after == {200: 5}
    assert len(said) == 300  # every slow client was closed by the sidecar (else the gather would time out)
    assert counts["evicted"] + counts["timed_out"] >= 300 - 50


def test_a_tls_client_at_a_disable_inbound_gets_a_prompt_close_not_a_hang(tmp_path):
    path = pair_topology(tmp_path, b_mtls="DISABLE")

    async def body():
        async with running_in_process_mesh(path) as mesh:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            try:
                await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", mesh.replicas[("b", 0)].inbound_port, ssl=context), 20
                )
                outcome = "handshake completed"
            except TimeoutError:
                outcome = "hang"
            except (ssl.SSLError, ConnectionError) as exc:
                outcome = type(exc).__name__
            plain = await http1.simple_request(
                "127.0.0.1", mesh.replicas[("b", 0)].inbound_port, "GET", "/", headers={"host": "b"}, timeout=10
            )
            return outcome, plain.status, await stats(mesh, "b")

    outcome, plain, b_stats = run(body())
    assert outcome not in ("hang", "handshake completed"), outcome
    assert plain == 200  # plaintext, what a DISABLE port is for, is still served
    assert b_stats["tls_failures"] == {"tls sent to plaintext port": 1}


FD_LIMITED_MESH = textwrap.dedent("""
    import asyncio, json, os, resource, sys
    from sandbox.mesh.runtime.supervisor import InProcessMesh
    from sandbox.mesh.config.topology import load_topology

    async def main():
        mesh = InProcessMesh(load_topology(sys.argv[1]))
        await mesh.start()
        b = mesh.replicas[("b", 0)]
        open_now = len(os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 24, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        print(json.dumps({"inbound": b.inbound_port, "admin": b.admin_port}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await mesh.stop()

    asyncio.run(main())
""")


def test_a_sidecar_inbound_out_of_file_descriptors_is_not_ready_then_accepts_again(tmp_path):
    """The issue's case: a burst past the file limit at b's inbound. b's /ready says 503 while accept() fails,
    and once the burst is gone b's inbound accepts and answers again, without a restart."""
    path = pair_topology(tmp_path, b_mtls="PERMISSIVE")
    process = subprocess.Popen(
        [sys.executable, "-c", FD_LIMITED_MESH, str(path)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        ports = json.loads(process.stdout.readline())

        async def body():
            admin_reader, admin_writer = await asyncio.open_connection("127.0.0.1", ports["admin"])

            async def ready() -> tuple[int, bytes]:
                admin_writer.write(b"GET /ready HTTP/1.1\r\nHost: admin\r\n\r\n")
                head = await asyncio.wait_for(admin_reader.readuntil(b"\r\n\r\n"), 10)
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                return int(head.split(b" ")[1]), await admin_reader.readexactly(length)

            async def until(check, seconds: float = 30):
                deadline = asyncio.get_running_loop().time() + seconds
                state = await ready()
                while not check(state) and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.1)
                    state = await ready()
                return state

            before = await ready()
            burst = [await asyncio.open_connection("127.0.0.1", ports["inbound"]) for _ in range(60)]
            during = await until(lambda state: state[0] != 200)
            for _, writer in burst:
                writer.close()
            after = await until(lambda state: state[0] == 200)
            served = await http1.simple_request(
                "127.0.0.1", ports["inbound"], "GET", "/", headers={"host": "b"}, timeout=10
            )
            admin_writer.close()
            return before, during, after, served

        before, during, after, served = run(body(), timeout=120)
    finally:
        process.stdin.close()
        process.wait(20)
    assert before[0] == 200
    assert during[0] == 503 and b"inbound listener cannot accept: Too many open files" in during[1], during
    assert after[0] == 200
    assert served.status == 200
