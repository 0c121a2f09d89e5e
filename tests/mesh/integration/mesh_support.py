"""Helpers for the mesh integration tests: write a topology, run a real mesh, call it, read its sidecars."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import textwrap
from pathlib import Path

from sandbox.mesh.config.model import Request, UpstreamError
from sandbox.mesh.config.topology import load_topology
from sandbox.mesh.dataplane import http1
from sandbox.mesh.runtime.loadgen import LoadGenerator
from sandbox.mesh.runtime.supervisor import InProcessMesh, ProcessMesh


def run(coro, timeout: float = 60.0):
    """Run one async test body with a hard time limit."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def write_topology(directory: Path, text: str, name: str = "topology.yaml") -> Path:
    path = Path(directory) / name
    path.write_text(textwrap.dedent(text))
    return path


def pair_topology(
    directory: Path,
    *,
    b_behaviour: str = "",
    b_traffic: str = "",
    b_mtls: str = "STRICT",
    b_authorization: str = "",
    a_mtls: str = "STRICT",
) -> Path:
    """The seed's A -> B, with B's parts given as YAML snippets (already indented for a mapping)."""

    def block(key: str, body: str) -> str:
        return (
            f"    {key}:\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "      ") + "\n"
            if body.strip()
            else ""
        )

    text = (
        "name: pair\nentry: a\nservices:\n"
        f"  - name: a\n    calls: [b]\n    mtls: {a_mtls}\n"
        f"  - name: b\n    mtls: {b_mtls}\n"
        + block("behaviour", b_behaviour)
        + block("traffic", b_traffic)
        + block("authorization", b_authorization)
    )
    path = Path(directory) / "pair.yaml"
    path.write_text(text)
    return path


@contextlib.asynccontextmanager
async def running_mesh(path: Path, **options):
    mesh = ProcessMesh(load_topology(path), path, **options)
    await mesh.start()
    try:
        yield mesh
    finally:
        await mesh.stop()


@contextlib.asynccontextmanager
async def running_in_process_mesh(path: Path):
    """The same components in one event loop: fast, but a "kill" stops listeners, not a process."""
    mesh = InProcessMesh(load_topology(path))
    await mesh.start()
    try:
        yield mesh
    finally:
        await mesh.stop()


async def open_loop_load(mesh, *, rate: float, seconds: float, host: str | None = None) -> list:
    """Open-loop load at the entry service for `seconds`, with the mesh's loadgen identity; the samples."""
    load = LoadGenerator(
        "127.0.0.1",
        mesh.entry_ports(),
        rate=rate,
        host_header=host or mesh.topology.entry,
        ssl_context=await mesh.entry_ssl_context(),
    )
    try:
        return await load.run(seconds)
    finally:
        load.close()


async def call_entry(mesh, count: int = 1, *, path: str = "/", plaintext: bool = False) -> list[http1.Response]:
    """`count` sequential requests to the entry service's inbound, as the mesh's load generator does
    (mTLS with a mesh-issued `loadgen` certificate, or plain HTTP). A failed connection shows as status 0."""
    context = None if plaintext else await mesh.entry_ssl_context()
    pool = http1.ConnectionPool("127.0.0.1", mesh.entry_ports()[0], ssl_context=context)
    responses = []
    try:
        for _ in range(count):
            try:
                responses.append(await asyncio.wait_for(pool.request(Request("GET", path), mesh.topology.entry), 10))
            except (TimeoutError, UpstreamError) as exc:
                responses.append(http1.Response(0, detail=str(exc)))
    finally:
        pool.close()
    return responses


async def stats(mesh, service: str, replica: int = 0) -> dict:
    return json.loads((await mesh.sidecar_admin(service, replica, "/stats")).body)


async def access_log(mesh, service: str, replica: int = 0) -> list[dict]:
    body = (await mesh.sidecar_admin(service, replica, "/access-log")).body.decode()
    return [json.loads(line) for line in body.splitlines() if line.strip()]


async def metrics_text(mesh, service: str, replica: int = 0) -> str:
    return (await mesh.sidecar_admin(service, replica, "/metrics")).body.decode()


def statuses(responses) -> dict[int, int]:
    counts: dict[int, int] = {}
    for response in responses:
        counts[response.status] = counts.get(response.status, 0) + 1
    return counts


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def port_listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pids_in_group(pgid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(name))
    return found


def listening_ports_of(pids: list[int]) -> set[int]:
    """TCP ports in LISTEN state owned by any of `pids` (via their socket inodes)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except (FileNotFoundError, PermissionError):
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:  # 0A = LISTEN
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports
