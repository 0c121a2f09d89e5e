"""Listeners stay bounded: slow clients are timed out or evicted, a cap holds, a failed accept is survived."""

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from sandbox.mesh.config.model import Response
from sandbox.mesh.dataplane import http1
from sandbox.mesh.dataplane.listener import ListenerLimits
from sandbox.mesh.process import bind_listener

REPO = Path(__file__).resolve().parents[3]
SLOW_HEAD = b"GET / HTTP/1.1\r\nHost: b\r\nX-Slow: "  # never finished


async def _ok_server(limits: ListenerLimits) -> http1.HttpServer:
    async def handle(request, connection):
        return Response(200, body=b"served\n")

    server = http1.HttpServer(handle, limits=limits)
    await server.start(bind_listener())
    return server


async def _slow_clients(port: int, count: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    clients = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(SLOW_HEAD)
        clients.append((reader, writer))
    return clients


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """What the server said before it closed the connection (b"" for a silent close or a reset)."""
    try:
        return await reader.read()
    except ConnectionError:
        return b""


async def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def test_slow_clients_past_the_cap_cannot_lock_out_a_real_request():
    """300 slowloris connections against a cap of 50 with a long read timeout: the listener never holds more
    than 50, and a real request still gets its answer (it evicts the slowest-to-expire slow client)."""

    async def body():
        server = await _ok_server(ListenerLimits(max_connections=50, read_timeout=60, idle_timeout=60))
        clients = await _slow_clients(server.port, 300)
        try:
            await _wait_for(lambda: server.listener.counts["accepted"] >= 300)
            held = len(server.listener.slots)
            answer = await http1.simple_request("127.0.0.1", server.port, "GET", "/", headers={"host": "b"}, timeout=10)
            status = dict(server.listener.counts)
        finally:
            for _, writer in clients:
                writer.close()
            await server.stop()
        return held, answer, status

    held, answer, status = asyncio.run(body())
    assert held <= 50
    assert answer.status == 200 and answer.body == b"served\n"
    assert status["evicted"] >= 250


def test_slow_clients_are_answered_408_and_closed_after_the_read_timeout():
    async def body():
        server = await _ok_server(ListenerLimits(max_connections=1000, read_timeout=1.0, idle_timeout=1.0))
        clients = await _slow_clients(server.port, 300)
        try:
            said = await asyncio.wait_for(asyncio.gather(*(_closed_by_server(r) for r, _ in clients)), 60)
            answer = await http1.simple_request("127.0.0.1", server.port, "GET", "/", headers={"host": "b"}, timeout=10)
            left = len(server.listener.slots)
        finally:
            for _, writer in clients:
                writer.close()
            await server.stop()
        return said, answer, left

    said, answer, left = asyncio.run(body())
    assert sum(s.startswith(b"HTTP/1.1 408 Request Timeout\r\n") for s in said) == 300
    assert answer.status == 200
    assert left <= 1  # only the real request's own connection, if its close has not been seen yet


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout():
    async def body():
        server = await _ok_server(ListenerLimits(read_timeout=10, idle_timeout=0.5))
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n")
            first = await asyncio.wait_for(reader.readuntil(b"served\n"), 10)
            after = await asyncio.wait_for(_closed_by_server(reader), 30)  # then nothing: the server closes
        finally:
            writer.close()
            await server.stop()
        return first, after

    first, after = asyncio.run(body())
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert after == b""  # closed without a word: no request had started


def test_a_connection_with_a_request_in_flight_is_neither_timed_out_nor_evicted():
    async def body():
        release = asyncio.Event()

        async def handle(request, connection):
            await release.wait()
            return Response(200, body=b"late but whole\n")

        server = http1.HttpServer(handle, limits=ListenerLimits(max_connections=1, read_timeout=0.2, idle_timeout=0.2))
        await server.start(bind_listener())
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n")
            await _wait_for(lambda: any(not s.evictable for s in server.listener.slots))
            # A second client finds the only slot busy: refused, while the first keeps its request.
            try:
                second_reader, second_writer = await asyncio.open_connection("127.0.0.1", server.port)
                refused = await asyncio.wait_for(_closed_by_server(second_reader), 10)
                second_writer.close()
            except ConnectionResetError:  # the reset can come before the client saw its connect complete
                refused = b""
            await _wait_for(lambda: server.listener.counts["refused"] >= 1)
            await asyncio.sleep(0.5)  # past both timeouts (not a timing assertion: the answer must still come)
            release.set()
            answer = await asyncio.wait_for(reader.readuntil(b"whole\n"), 10)
        finally:
            writer.close()
            await server.stop()
        return refused, answer

    refused, answer = asyncio.run(body())
    assert refused == b""
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


FD_LIMITED_SERVER = textwrap.dedent("""
    import asyncio, json, os, resource, sys
    from sandbox.mesh.dataplane import http1
    from sandbox.mesh.config.model import Response
    from sandbox.mesh.process import bind_listener

    async def main():
        async def handle(request, connection):
            if request.path == "/ready":
                healthy, why = data.healthy()
                return Response(200 if healthy else 503, body=(why or "ready").encode())
            return Response(200, body=b"served")

        data = http1.HttpServer(handle, name="data")
        admin = http1.HttpServer(handle, name="admin")
        await data.start(bind_listener())
        await admin.start(bind_listener())
        open_now = len(os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 24, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        print(json.dumps({"data": data.port, "admin": admin.port}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())
""")


def test_a_listener_out_of_file_descriptors_recovers_and_readiness_says_so_meanwhile():
    """In a process with a low RLIMIT_NOFILE, a burst of connections makes accept() fail with EMFILE.
    The listener must report it (readiness 503), and once the burst is gone accept and serve again."""
    process = subprocess.Popen(
        [sys.executable, "-c", FD_LIMITED_SERVER],
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

            before = await ready()
            burst = [await asyncio.open_connection("127.0.0.1", ports["data"]) for _ in range(60)]
            during = await ready()
            deadline = asyncio.get_running_loop().time() + 30
            while during[0] == 200 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
                during = await ready()
            for _, writer in burst:
                writer.close()
            after = await ready()
            while after[0] != 200 and asyncio.get_running_loop().time() < deadline + 30:
                await asyncio.sleep(0.1)
                after = await ready()
            served = await http1.simple_request(
                "127.0.0.1", ports["data"], "GET", "/", headers={"host": "b"}, timeout=10
            )
            admin_writer.close()
            return before, during, after, served

        before, during, after, served = asyncio.run(body())
    finally:
        process.stdin.close()
        process.wait(10)
    assert before == (200, b"ready")
    assert during[0] == 503 and b"Too many open files" in during[1], during
    assert after[0] == 200
    assert served.status == 200 and served.body == b"served"
