"""The mesh's components as objects in the caller's event loop (fast tests; no real process exit)."""

from __future__ import annotations

import time

from sandbox.mesh.config.model import Topology
from sandbox.mesh.controlplane.control_plane import (
    ControlPlane,
)
from sandbox.mesh.controlplane.ops import (
    RegisterEndpoint,
)
from sandbox.mesh.process import token_digest
from sandbox.mesh.runtime.mesh_base import MeshBase, Replica


class InProcessMesh(MeshBase):
    """The same components as objects in the caller's event loop (fast tests; no real process exit)."""

    def __init__(self, topology: Topology, *, cert_ttl: float = 3600.0) -> None:
        super().__init__(topology)
        self.cert_ttl = cert_ttl
        self.control_plane: ControlPlane | None = None
        self.apps: dict[tuple[str, int], object] = {}
        self.sidecars: dict[tuple[str, int], object] = {}
        self._down: set[tuple[str, str, int]] = set()  # (kind, service, replica) stopped by kill()

    async def start(self, timeout: float = 15.0) -> None:
        from sandbox.mesh.dataplane.tls import send_tls_alerts_on_handshake_failure
        from sandbox.mesh.runtime.service import ServiceApp

        # The sidecars run in this event loop, so it gets the sidecar process's TLS alert behaviour.
        send_tls_alerts_on_handshake_failure()
        self.started_at = time.monotonic()
        self.control_plane = ControlPlane(
            self.topology,
            cert_ttl=self.cert_ttl,
            operator_token=self.operator_token,
            bootstrap_tokens=dict(self.bootstrap_tokens),
        )
        await self.control_plane.start(self.control_path)
        for svc in self.topology.services:
            for i in range(svc.replicas):
                app = ServiceApp(
                    svc.name,
                    i,
                    behaviour=svc.behaviour,
                    calls=svc.calls,
                    admin_token_digest=token_digest(self.operator_token),
                )
                self.apps[(svc.name, i)] = app
                self.replicas[(svc.name, i)] = Replica(svc.name, i, app_port=await app.start(), sidecar=svc.sidecar)
        for key, rep in self.replicas.items():
            if rep.sidecar:
                sidecar = self._sidecar(rep)
                self.sidecars[key] = sidecar
                ports = await sidecar.start()
                rep.inbound_port, rep.outbound_port, rep.admin_port = (
                    ports["inbound"],
                    ports["outbound"],
                    ports["admin"],
                )
        await self._wire_services()
        await self.wait_in_sync(timeout)
        self.ready_seconds = time.monotonic() - self.started_at

    def _sidecar(self, rep: Replica):
        from sandbox.mesh.dataplane.sidecar import Sidecar

        return Sidecar(
            rep.service,
            rep.replica,
            rep.app_port,
            self.control_path,
            token=self.bootstrap_tokens[(rep.service, rep.replica)],
            admin_token_digest=token_digest(self.operator_token),
        )

    async def kill(self, kind: str, service: str, replica: int = 0) -> None:
        if kind == "control_plane":
            await self.control_plane.stop()
        else:
            table = self.sidecars if kind == "sidecar" else self.apps
            await table[(service, replica)].stop()
        self._down.add((kind, service, replica))

    def alive(self, kind: str, service: str, replica: int = 0) -> bool:
        if kind == "control_plane":
            return self.control_plane is not None and (kind, service, replica) not in self._down
        table = self.sidecars if kind == "sidecar" else self.apps
        return (service, replica) in table and (kind, service, replica) not in self._down

    async def restart(self, kind: str, service: str, replica: int = 0) -> None:
        from sandbox.mesh.runtime.service import ServiceApp

        if kind == "control_plane":
            if self.alive(kind, service, replica):
                await self.control_plane.stop()
            self._down.discard((kind, service, replica))
            # Same socket (the sidecars know it), same CA and tokens, as the process runtime's restart.
            self.control_plane = ControlPlane(
                self.topology,
                cert_ttl=self.cert_ttl,
                ca=self.control_plane.ca,
                operator_token=self.operator_token,
                bootstrap_tokens=dict(self.bootstrap_tokens),
            )
            await self.control_plane.start(self.control_path)
            for rep in self.replicas.values():
                if not rep.sidecar:
                    await self.operate(RegisterEndpoint(rep.service, rep.replica, rep.app_port))
            await self.replay_operator_changes()
            await self.wait_in_sync()
            return
        rep = self.replicas[(service, replica)]
        self._down.discard((kind, service, replica))
        if kind == "sidecar":
            sidecar = self._sidecar(rep)
            self.sidecars[(service, replica)] = sidecar
            await sidecar.start(rep.inbound_port, rep.outbound_port, rep.admin_port)
            await self.wait_in_sync()
        else:
            svc = self.topology.service(service)
            app = ServiceApp(
                service,
                replica,
                behaviour=svc.behaviour,
                calls=svc.calls,
                outbound_port=rep.outbound_port or None,
                admin_token_digest=token_digest(self.operator_token),
            )
            self.apps[(service, replica)] = app
            await app.start(rep.app_port)

    async def stop(self) -> None:
        for sidecar in self.sidecars.values():
            await sidecar.stop()
        for app in self.apps.values():
            await app.stop()
        if self.control_plane is not None:
            await self.control_plane.stop()
        self._remove_run_dir()
