"""What both runtimes share: the replica map and the actions that go through the control plane (typed ops)
or a service's admin API. ProcessMesh (supervisor.py) and InProcessMesh (in_process.py) build on it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import tempfile
import time
from dataclasses import dataclass

from sandbox.mesh.config.model import Topology
from sandbox.mesh.controlplane.ca import make_csr, new_private_key_pem
from sandbox.mesh.controlplane.control_plane import (
    LOADGEN_IDENTITY,
)
from sandbox.mesh.controlplane.meshconfig import to_jsonable
from sandbox.mesh.controlplane.operator import operator_call
from sandbox.mesh.controlplane.ops import (
    IssueClientCert,
    Op,
    RegisterEndpoint,
    SetAuthorization,
    SetCertFault,
    SetMtlsMode,
    SetOutboundTls,
    SetTraffic,
    Status,
)
from sandbox.mesh.controlplane.sessions import new_token
from sandbox.mesh.dataplane import http1


class MeshError(RuntimeError):
    pass


@dataclass
class Replica:
    """Where one replica of a service lives."""

    service: str
    replica: int
    app_port: int = 0
    inbound_port: int = 0
    outbound_port: int = 0
    admin_port: int = 0
    sidecar: bool = True


class MeshBase:
    """What both runtimes share: the topology, the replica map and the actions that go through the
    control plane or a service's admin API."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.replicas: dict[tuple[str, int], Replica] = {}
        self.started_at = 0.0
        self.ready_seconds = 0.0
        self.operator_token = new_token()
        self.bootstrap_tokens = {
            (svc.name, i): new_token() for svc in topology.services if svc.sidecar for i in range(svc.replicas)
        }
        # mkdtemp makes the directory mode 0700: only this user can reach the control socket at all.
        self.run_dir = tempfile.mkdtemp(prefix="mesh-run-")
        self.control_path = os.path.join(self.run_dir, "control.sock")
        self._operator_changes: dict[tuple[str, str | None], Op] = {}

    def admin_headers(self) -> dict[str, str]:
        """What the sidecars' and services' admin APIs need to hear from the operator."""
        return {"authorization": f"Bearer {self.operator_token}"}

    def _remove_run_dir(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # ------------------------------------------------------------------ control plane operations

    async def operate(self, op: Op) -> dict:
        """Send one typed op to the control plane; its reply, or MeshError with the control plane's reason."""
        try:
            reply = await operator_call(self.control_path, op.to_json(), token=self.operator_token)
        except (OSError, TimeoutError) as exc:  # killed, or restarting: say so in words a learner can read
            why = exc.strerror or str(exc) or type(exc).__name__
            raise MeshError(f"the control plane is not reachable ({why})") from exc
        if not reply.get("ok"):
            raise MeshError(reply.get("error", "operation failed"))
        if op.replayed:
            if op.kept_for_replay:
                # What the operator changed, kept to give a restarted control plane.
                self._operator_changes[op.replay_key] = op
            await self.settle()
        return reply

    async def settle(self, timeout: float = 3.0) -> bool:
        """Wait until every connected sidecar has answered (ACK or NACK) its latest push, so a change is in
        effect when its command is reported applied. False if some had not after `timeout` (a dead or busy
        sidecar must not hold a learner's command for ever)."""
        deadline = time.monotonic() + timeout
        while True:
            sidecars = (await self.status())["sidecars"]
            if all(_settled(s) for s in sidecars if s["connected"]):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)

    async def replay_operator_changes(self) -> None:
        for op in list(self._operator_changes.values()):
            await operator_call(self.control_path, op.to_json(), token=self.operator_token)

    async def status(self) -> dict:
        return await self.operate(Status())

    async def wait_in_sync(self, timeout: float = 10.0) -> dict:
        """Until every sidecar is connected and has ACKed (or NACKed) its latest push."""
        expected = sum(1 for r in self.replicas.values() if r.sidecar)
        deadline = time.monotonic() + timeout
        while True:
            status = await self.status()
            sidecars = status["sidecars"]
            settled = [s for s in sidecars if s["connected"] and _settled(s)]
            if len(settled) >= expected and len(sidecars) >= expected:
                return status
            if time.monotonic() > deadline:
                raise MeshError(f"sidecars not in sync after {timeout}s: {sidecars}")
            await asyncio.sleep(0.02)

    async def set_traffic(self, service: str, traffic: dict, *, validate: bool = True) -> dict:
        return await self.operate(SetTraffic(service, traffic, validate))

    async def set_authorization(self, service: str, authorization: dict | None, *, validate: bool = True) -> dict:
        return await self.operate(SetAuthorization(service, authorization, validate))

    async def deny(self, service: str, source: str) -> dict:
        """Refuse calls from `source` to `service` by authorization policy."""
        return await self.set_authorization(service, {"deny": [{"sources": [self.topology.spiffe_id(source)]}]})

    async def set_mtls_mode(self, service: str, mode: str) -> dict:
        return await self.operate(SetMtlsMode(service, mode))

    async def set_outbound_tls(self, service: str, enabled: bool) -> dict:
        """enabled=False: the workload's sidecar calls its peers in plaintext."""
        return await self.operate(SetOutboundTls(service, enabled))

    async def set_cert_fault(self, service: str, fault: str | None) -> dict:
        return await self.operate(SetCertFault(service, fault))

    async def client_certificate(self, service: str = LOADGEN_IDENTITY) -> dict:
        """A client certificate for `service`: the key is made here and only its CSR is sent."""
        key_pem = new_private_key_pem()
        reply = await self.operate(IssueClientCert(csr=make_csr(key_pem).decode(), service=service))
        return {**reply, "key_pem": key_pem.decode()}

    async def set_behaviour(self, service: str, replica: int | None = None, **fields) -> list[dict]:
        """Make replicas slow (latency_ms), hang, or fail (error_rate, error_status)."""
        results = []
        for (name, index), rep in sorted(self.replicas.items()):
            if name == service and (replica is None or replica == index):
                response = await http1.simple_request(
                    "127.0.0.1",
                    rep.app_port,
                    "POST",
                    "/_mesh/behaviour",
                    headers=self.admin_headers(),
                    body=json.dumps(fields).encode(),
                )
                if response.status != 200:
                    raise MeshError(response.body.decode())
                results.append(json.loads(response.body))
        return results

    async def reset_behaviour(self, service: str, replica: int | None = None) -> list[dict]:
        """Back to the topology's behaviour: every replica, or only `replica`."""
        return await self.set_behaviour(service, replica, **to_jsonable(self.topology.service(service).behaviour))

    async def service_stats(self, service: str) -> list[dict]:
        stats = []
        for (name, _index), rep in sorted(self.replicas.items()):
            if name == service:
                try:
                    response = await http1.simple_request(
                        "127.0.0.1", rep.app_port, "GET", "/_mesh/stats", headers=self.admin_headers(), timeout=2
                    )
                    stats.append(json.loads(response.body))
                except (TimeoutError, OSError, Exception):
                    stats.append({"service": name, "requests": 0, "by_status": {}, "down": True})
        return stats

    async def sidecar_admin(self, service: str, replica: int, path: str) -> http1.Response:
        rep = self.replicas[(service, replica)]
        return await http1.simple_request(
            "127.0.0.1", rep.admin_port, "GET", path, headers=self.admin_headers(), timeout=3
        )

    def entry_ports(self) -> list[int]:
        entry = self.topology.service(self.topology.entry)
        return [
            r.inbound_port if r.sidecar else r.app_port
            for (name, _), r in sorted(self.replicas.items())
            if name == entry.name
        ]

    async def entry_ssl_context(self) -> ssl.SSLContext | None:
        """mTLS client context for the load generator (as the `loadgen` identity) if the entry needs it."""
        entry = self.topology.service(self.topology.entry)
        if not entry.sidecar or entry.mtls_mode == "DISABLE":
            return None
        return await self.client_ssl_context()

    async def client_ssl_context(self, service: str = LOADGEN_IDENTITY) -> ssl.SSLContext:
        from sandbox.mesh.dataplane import tls
        from sandbox.mesh.dataplane.sidecar_keys import _certificate

        cert = await self.client_certificate(service)
        return tls.client_context(
            _certificate({**cert, "not_after": time.time() + 3600}, cert["key_pem"].encode()), cert["root_pem"].encode()
        )

    def _direct_targets(self) -> dict[str, list[int]]:
        """For workloads without a sidecar: where each service answers (its inbound if it has a sidecar)."""
        targets: dict[str, list[int]] = {}
        for (name, _), rep in sorted(self.replicas.items()):
            targets.setdefault(name, []).append(rep.inbound_port if rep.sidecar else rep.app_port)
        return targets

    async def _wire_services(self) -> None:
        direct = self._direct_targets()
        for rep in self.replicas.values():
            svc = self.topology.service(rep.service)
            if rep.sidecar:
                body = {"outbound_port": rep.outbound_port}
            else:
                body = {"direct": {c: direct.get(c, []) for c in svc.calls}}
            await http1.simple_request(
                "127.0.0.1",
                rep.app_port,
                "POST",
                "/_mesh/wiring",
                headers=self.admin_headers(),
                body=json.dumps(body).encode(),
            )
        for rep in self.replicas.values():
            if not rep.sidecar:
                await self.operate(RegisterEndpoint(rep.service, rep.replica, rep.app_port))


# ====================================================================== OS processes


def _settled(sidecar: dict) -> bool:
    """A sidecar's status says it answered its latest push: ACKed it, or NACKed that very version."""
    nack = sidecar["nack"]
    return sidecar["in_sync"] or bool(nack and nack["version"] == sidecar["pushed_version"])
