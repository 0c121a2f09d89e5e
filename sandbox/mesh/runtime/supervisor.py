"""Starts an experiment's mesh (control plane, each service replica and its sidecar), watches it, applies
learner actions and tears it all down.

`ProcessMesh` runs every component as its own OS process, all in one process group, and leaves no
child and no listening port behind (children also die with the supervisor: PR_SET_PDEATHSIG plus
their stdin pipe closing). `InProcessMesh` runs the same components in the caller's event loop for
fast tests. Both offer the same actions.

Each experiment has its own secrets: an operator token (control-plane ops, the sidecars' and services'
admin APIs) and one bootstrap token per sidecar replica, made with `secrets` and handed to each child
on its stdin pipe, never in argv or the environment. The control plane listens on a Unix socket in a
directory of the experiment's own, mode 0700. Components that only check the operator token get its
SHA-256 digest, so no sidecar or service could act as the operator.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sandbox.mesh.config.model import Topology
from sandbox.mesh.controlplane.meshconfig import to_jsonable
from sandbox.mesh.controlplane.ops import (
    RegisterEndpoint,
)
from sandbox.mesh.dataplane import http1
from sandbox.mesh.process import READY_PREFIX, SECRETS_ENV, token_digest
from sandbox.mesh.runtime.in_process import InProcessMesh
from sandbox.mesh.runtime.mesh_base import MeshBase, MeshError, Replica

READY_TIMEOUT = 10.0
REPO_ROOT = Path(__file__).resolve().parents[3]
# What `python -m` runs for each kind of child; the kinds are the names the rest of the runtime uses.
COMPONENT_MODULES = {
    "control_plane": "sandbox.mesh.controlplane.control_plane",
    "service": "sandbox.mesh.runtime.service",
    "sidecar": "sandbox.mesh.dataplane.sidecar",
}


def bytecode_cache_dir() -> str | None:
    """Where the components keep their compiled bytecode: a directory of this user's own (~/.cache), or None.

    Every component is a new interpreter that imports the engine; compiling its modules from source each
    time costs ~20 ms of CPU per process (13 processes for `shop`). The cache is outside the source tree,
    and refused unless it is a real directory owned by us that no one else can write: Python trusts a
    .pyc that matches its source's size and mtime, so a planted one would run as the component.
    """
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "meshlearn" / "pycache"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for directory in (path.parent, path):
            info = directory.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
                return None
    except (OSError, RuntimeError):  # RuntimeError: no home directory to expand
        return None
    return str(path)


def bytecode_env() -> dict[str, str]:
    """The components' environment for bytecode: cached in our own directory, or never written."""
    cache = bytecode_cache_dir()
    if cache is None:
        return {"PYTHONDONTWRITEBYTECODE": "1"}
    return {"PYTHONPYCACHEPREFIX": cache, "PYTHONDONTWRITEBYTECODE": ""}  # empty: unset for Python


@dataclass
class Child:
    kind: str  # control_plane | service | sidecar
    service: str
    replica: int
    argv: list[str]
    process: asyncio.subprocess.Process | None = None
    info: dict = field(default_factory=dict)
    drain: asyncio.Task | None = None
    env: dict = field(default_factory=dict)  # extra environment for this child only
    log: IO[bytes] | None = None  # its stderr, when kept in a nameless file


class ProcessMesh(MeshBase):
    def __init__(
        self, topology: Topology, topology_path: str | Path, *, cert_ttl: float = 3600.0, log_dir: str | None = None
    ) -> None:
        super().__init__(topology)
        self.topology_path = str(Path(topology_path).resolve())
        self.cert_ttl = cert_ttl
        self.children: dict[tuple[str, str, int], Child] = {}
        self.pgid: int | None = None
        self.exits: list[dict] = []  # every child exit seen while running (killed on purpose or not)
        self._killed: set[int] = set()
        self._stopping = False
        # Children's stderr goes to files in `log_dir` when one is asked for; otherwise to nameless
        # temporary files (O_TMPFILE): nothing is left on disk, even when this process is SIGKILLed.
        self.log_dir = log_dir
        if log_dir is not None:
            os.makedirs(log_dir, exist_ok=True)
        # The mesh's CA is made here and handed to the control plane process alone (with its secrets, on
        # its stdin), so a restarted control plane signs with the same root.
        from sandbox.mesh.controlplane.ca import CertificateAuthority

        ca = CertificateAuthority.create(topology.trust_domain)
        self._ca_secrets = {"ca_pem": ca.root_pem.decode(), "ca_key_pem": ca.root_key_pem.decode()}
        self._env = {
            **os.environ,
            "MESH_PARENT_PID": str(os.getpid()),
            "PYTHONPATH": str(REPO_ROOT),
            SECRETS_ENV: "1",
            **bytecode_env(),
        }

    def pids(self) -> list[int]:
        return [c.process.pid for c in self.children.values() if c.process and c.process.returncode is None]

    def _stderr_tail(self, child: Child, log_path: str | None) -> str:
        if log_path is not None:
            with open(log_path, "rb") as handle:
                return handle.read()[-2000:].decode(errors="replace")
        child.log.seek(0)
        return child.log.read()[-2000:].decode(errors="replace")

    async def _spawn(self, child: Child) -> dict:
        log_path = None
        if self.log_dir is not None:
            log_path = os.path.join(self.log_dir, f"{child.kind}-{child.service}-{child.replica}.log")
            log = open(log_path, "ab")
        else:
            log = child.log = tempfile.TemporaryFile(prefix="mesh-log-")
        # The first child leads a new process group (process_group=0) and the others join it. A new
        # *session* would not do: a process may only join a group of its own session.
        group = {"process_group": 0 if self.pgid is None else self.pgid}
        try:
            child.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                COMPONENT_MODULES[child.kind],
                *child.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env={**self._env, **child.env},
                cwd=str(REPO_ROOT),
                **group,
            )
        finally:
            if log_path is not None:
                log.close()
        if self.pgid is None:
            self.pgid = child.process.pid
        self.children[(child.kind, child.service, child.replica)] = child
        # The child's secrets: the first line on its stdin (the pipe then stays open until we go).
        child.process.stdin.write(json.dumps(self._secrets_for(child)).encode() + b"\n")
        try:
            await child.process.stdin.drain()
        except ConnectionError:
            pass  # it died at once: the readiness wait below reports why
        try:
            while True:
                line = await asyncio.wait_for(child.process.stdout.readline(), READY_TIMEOUT)
                if not line:
                    tail = self._stderr_tail(child, log_path)
                    raise MeshError(f"{child.kind} {child.service}-{child.replica} exited before it was ready:\n{tail}")
                if line.startswith(READY_PREFIX.encode()):
                    child.info = json.loads(line[len(READY_PREFIX) :])
                    break
        except TimeoutError as exc:
            raise MeshError(f"{child.kind} {child.service}-{child.replica} not ready in {READY_TIMEOUT}s") from exc
        child.drain = asyncio.create_task(self._drain_and_watch(child, child.process))
        return child.info

    async def _drain_and_watch(self, child: Child, process: asyncio.subprocess.Process) -> None:
        """Keep the child's stdout pipe flowing, and note when and how it exits."""
        while await process.stdout.read(65536):
            pass
        code = await process.wait()
        if not self._stopping:
            self.exits.append(
                {
                    "kind": child.kind,
                    "service": child.service,
                    "replica": child.replica,
                    "pid": process.pid,
                    "code": code,
                    "at": time.monotonic() - self.started_at,
                    "expected": process.pid in self._killed,
                }
            )

    def _secrets_for(self, child: Child) -> dict:
        """Each component gets only what it needs."""
        if child.kind == "control_plane":
            # The CA's root key too: the mesh's CA is made here, so a restarted control plane signs with it.
            return {
                "operator_token": self.operator_token,
                **self._ca_secrets,
                "bootstrap_tokens": [
                    {"service": name, "replica": index, "token": token}
                    for (name, index), token in self.bootstrap_tokens.items()
                ],
            }
        digest = token_digest(self.operator_token)
        if child.kind == "sidecar":
            return {
                "bootstrap_token": self.bootstrap_tokens[(child.service, child.replica)],
                "admin_token_digest": digest,
            }
        return {"admin_token_digest": digest}

    def _control_plane_child(self) -> Child:
        return Child(
            "control_plane",
            "control-plane",
            0,
            ["--topology", self.topology_path, "--socket", self.control_path, "--cert-ttl", str(self.cert_ttl)],
        )

    def _service_argv(self, name: str, replica: int, port: int = 0) -> list[str]:
        svc = self.topology.service(name)
        return [
            "--name",
            name,
            "--replica",
            str(replica),
            "--port",
            str(port),
            "--behaviour",
            json.dumps(to_jsonable(svc.behaviour)),
            "--calls",
            ",".join(svc.calls),
        ]

    def _sidecar_argv(self, rep: Replica) -> list[str]:
        return [
            "--service",
            rep.service,
            "--replica",
            str(rep.replica),
            "--app-port",
            str(rep.app_port),
            "--control-socket",
            self.control_path,
            "--inbound-port",
            str(rep.inbound_port),
            "--outbound-port",
            str(rep.outbound_port),
            "--admin-port",
            str(rep.admin_port),
        ]

    async def start(self, timeout: float = 15.0) -> None:
        self.started_at = time.monotonic()
        try:
            await self._spawn(self._control_plane_child())
            services = [
                Child("service", s.name, i, self._service_argv(s.name, i))
                for s in self.topology.services
                for i in range(s.replicas)
            ]
            infos = await asyncio.gather(*(self._spawn(c) for c in services))
            for child, info in zip(services, infos):
                self.replicas[(child.service, child.replica)] = Replica(
                    child.service,
                    child.replica,
                    app_port=info["port"],
                    sidecar=self.topology.service(child.service).sidecar,
                )
            sidecars = [
                Child("sidecar", r.service, r.replica, self._sidecar_argv(r))
                for r in self.replicas.values()
                if r.sidecar
            ]
            infos = await asyncio.gather(*(self._spawn(c) for c in sidecars))
            for child, info in zip(sidecars, infos):
                rep = self.replicas[(child.service, child.replica)]
                rep.inbound_port, rep.outbound_port, rep.admin_port = info["inbound"], info["outbound"], info["admin"]
            await self._wire_services()
            await self.wait_in_sync(timeout)
        except BaseException:
            await self.stop()
            raise
        self.ready_seconds = time.monotonic() - self.started_at

    async def kill(self, kind: str, service: str, replica: int = 0) -> int:
        """SIGKILL one service or sidecar process (a real, abrupt exit). Returns its pid."""
        child = self.children[(kind, service, replica)]
        self._killed.add(child.process.pid)
        child.process.kill()
        await child.process.wait()
        return child.process.pid

    async def restart(self, kind: str, service: str, replica: int = 0) -> None:
        """Start a killed (or running) component again, on its old ports when they are free."""
        if kind == "control_plane":
            await self._restart_control_plane()
            return
        key = (kind, service, replica)
        old = self.children.get(key)
        if old and old.process and old.process.returncode is None:
            await self.kill(kind, service, replica)
        rep = self.replicas[(service, replica)]
        if kind == "service":
            info = await self._spawn(
                Child("service", service, replica, self._service_argv(service, replica, rep.app_port))
            )
            if info["port"] != rep.app_port:
                rep.app_port = info["port"]
                if rep.sidecar:
                    await http1.simple_request(
                        "127.0.0.1",
                        rep.admin_port,
                        "POST",
                        "/app-port",
                        headers=self.admin_headers(),
                        body=json.dumps({"port": rep.app_port}).encode(),
                    )
            await self._wire_services()
        elif kind == "sidecar":
            info = await self._spawn(Child("sidecar", service, replica, self._sidecar_argv(rep)))
            moved = info["outbound"] != rep.outbound_port
            rep.inbound_port, rep.outbound_port, rep.admin_port = info["inbound"], info["outbound"], info["admin"]
            if moved:
                await self._wire_services()
            await self.wait_in_sync()
        else:
            raise MeshError(f"cannot restart {kind}")

    async def _restart_control_plane(self) -> None:
        """A new control plane process on the same socket (the sidecars know it and reconnect), with the same CA;
        it gets the operator's changes again, then every sidecar resyncs."""
        if self.alive("control_plane", "control-plane", 0):
            await self.kill("control_plane", "control-plane", 0)
        await self._spawn(self._control_plane_child())
        for rep in self.replicas.values():
            if not rep.sidecar:
                await self.operate(RegisterEndpoint(rep.service, rep.replica, rep.app_port))
        await self.replay_operator_changes()
        await self.wait_in_sync()

    def alive(self, kind: str, service: str, replica: int = 0) -> bool:
        child = self.children.get((kind, service, replica))
        return bool(child and child.process and child.process.returncode is None)

    async def stop(self) -> None:
        """SIGTERM the whole group, SIGKILL what is left after a grace period, reap everything."""
        self._stopping = True
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        procs = [c.process for c in self.children.values() if c.process]
        if procs:
            done, pending = await asyncio.wait([asyncio.create_task(p.wait()) for p in procs], timeout=3.0)
            if pending:
                if self.pgid is not None:
                    try:
                        os.killpg(self.pgid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                for p in procs:
                    if p.returncode is None:
                        p.kill()
                await asyncio.wait(pending, timeout=3.0)
        for child in self.children.values():
            if child.drain:
                child.drain.cancel()
            if child.process and child.process.stdin:
                child.process.stdin.close()
            if child.log is not None:
                child.log.close()
        self._remove_run_dir()


# Callers import both runtimes and their error from here.
__all__ = ["InProcessMesh", "MeshBase", "MeshError", "ProcessMesh", "Replica", "bytecode_cache_dir", "bytecode_env"]
