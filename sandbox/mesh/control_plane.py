"""The control plane: endpoint registry, policy store, the CA, and versioned pushes each sidecar ACKs or NACKs.

Speaks JSON lines over one TCP port on 127.0.0.1. Sidecars say `hello` (and later `renew`, `ack`,
`nack`); the supervisor sends `op` messages (change a policy, cause a certificate fault, ask for
status) and gets a `reply` for each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.mesh.ca import CertificateAuthority, WorkloadCertificate
from sandbox.mesh.meshconfig import MTLS_MODES, ConfigError, authorization_from_dict, to_jsonable, traffic_from_dict
from sandbox.mesh.model import Topology
from sandbox.mesh.schema import TLS
from sandbox.mesh.process import announce, bind_listener, close_server, run_component

CERT_FAULTS = ("expired", "foreign_ca", "wrong_spiffe")
LOADGEN_IDENTITY = "loadgen"  # the load generator and test clients speak mTLS as this service account


@dataclass
class SidecarSession:
    service: str
    replica: int
    inbound_port: int
    writer: asyncio.StreamWriter | None = None
    pushed_version: int = 0
    acked_version: int = 0
    nack: dict | None = None  # {"version": n, "reason": "..."} of the last refusal
    certificate: WorkloadCertificate | None = None
    cert_fault: str | None = None  # the fault the current certificate was issued with
    renewals: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.service, self.replica)


@dataclass
class ServicePolicy:
    traffic: Any  # JSON form; may be invalid when pushed raw on purpose
    authorization: Any
    mtls_mode: str
    outbound_tls: bool = True
    sidecar: bool = True


@dataclass
class ControlPlane:
    topology: Topology
    cert_ttl: float = 3600.0
    ca: CertificateAuthority | None = None
    version: int = 0
    policies: dict[str, ServicePolicy] = field(default_factory=dict)
    sessions: dict[tuple[str, int], SidecarSession] = field(default_factory=dict)
    plain_endpoints: dict[tuple[str, int], int] = field(default_factory=dict)  # workloads without a sidecar
    cert_faults: dict[str, str] = field(default_factory=dict)
    port: int = 0

    def __post_init__(self) -> None:
        if self.ca is None:
            self.ca = CertificateAuthority.create(self.topology.trust_domain)
        for svc in self.topology.services:
            self.policies[svc.name] = ServicePolicy(
                traffic=to_jsonable(svc.traffic), authorization=to_jsonable(svc.authorization),
                mtls_mode=svc.mtls_mode, sidecar=svc.sidecar,
            )
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._findings: list[dict] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, port: int = 0) -> int:
        sock = bind_listener(port)
        self._server = await asyncio.start_server(self._on_connection, sock=sock, limit=1 << 22)
        self.port = sock.getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            await close_server(self._server, self._writers)

    # ------------------------------------------------------------------ documents

    def spiffe_id(self, service: str) -> str:
        return self.topology.spiffe_id(service)

    def _issue(self, service: str) -> WorkloadCertificate:
        spiffe_id = self.spiffe_id(service)
        fault = self.cert_faults.get(service)
        if fault == "expired":
            return self.ca.issue_expired(spiffe_id)
        if fault == "foreign_ca":
            return self.ca.issue_foreign(spiffe_id, ttl_seconds=self.cert_ttl)
        if fault == "wrong_spiffe":
            return self.ca.issue_wrong_identity(spiffe_id, ttl_seconds=self.cert_ttl)
        return self.ca.issue(spiffe_id, ttl_seconds=self.cert_ttl)

    def _issue_for(self, session: SidecarSession) -> None:
        session.cert_fault = self.cert_faults.get(session.service)
        session.certificate = self._issue(session.service)

    def endpoints_of(self, service: str) -> list[dict]:
        policy = self.policies[service]
        found = []
        if policy.sidecar:
            for session in sorted(self.sessions.values(), key=lambda s: s.replica):
                if session.service == service:
                    found.append({"service": service, "host": "127.0.0.1", "port": session.inbound_port,
                                  "spiffe_id": self.spiffe_id(service), "replica": session.replica})
        else:
            for (name, replica), port in sorted(self.plain_endpoints.items()):
                if name == service:
                    found.append({"service": service, "host": "127.0.0.1", "port": port, "spiffe_id": "",
                                  "replica": replica})
        return found

    def document_for(self, session: SidecarSession) -> dict:
        policy = self.policies[session.service]
        cert = session.certificate
        not_before = cert.not_before.timestamp() if cert.not_before else None
        return {
            "version": session.pushed_version,
            "service": session.service,
            "mtls_mode": policy.mtls_mode,
            "outbound_tls": policy.outbound_tls,
            "authorization": policy.authorization,
            "destinations": {
                name: {"traffic": p.traffic, "endpoints": self.endpoints_of(name), "sidecar": p.sidecar}
                for name, p in self.policies.items()
            },
            "certificate": {
                "cert_pem": cert.cert_pem.decode(), "key_pem": cert.key_pem.decode(), "spiffe_id": cert.spiffe_id,
                "not_after": cert.not_after.timestamp(), "not_before": not_before,
                # A changed fault tells the sidecar this is a new identity, not a routine renewal.
                "fault": session.cert_fault,
            },
            "root_pem": self.ca.root_pem.decode(),
        }

    def _push(self, session: SidecarSession) -> None:
        if session.writer is None or session.writer.is_closing():
            return
        self.version += 1
        session.pushed_version = self.version
        message = {"type": "config", "version": self.version, "config": self.document_for(session)}
        session.writer.write(json.dumps(message).encode() + b"\n")

    def push_all(self, services: set[str] | None = None) -> None:
        for session in self.sessions.values():
            if services is None or session.service in services:
                self._push(session)

    # ------------------------------------------------------------------ connections

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        session: SidecarSession | None = None
        try:
            while line := await reader.readline():
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    continue  # one garbled line does not end a sidecar's session
                if not isinstance(message, dict):
                    continue
                kind = message.get("type")
                if kind == "hello":
                    session = self._hello(message, writer)
                elif kind in ("ack", "nack") and session is not None:
                    version = message.get("version")
                    if not isinstance(version, int) or version > session.pushed_version:
                        continue  # not an answer to anything this control plane pushed
                    if kind == "ack":
                        session.acked_version = max(session.acked_version, version)
                        if session.nack is not None and session.nack["version"] <= version:
                            session.nack = None  # a later accepted version supersedes the refusal
                    else:
                        session.nack = {"version": version, "reason": str(message.get("reason", ""))}
                elif kind == "renew" and session is not None:
                    if session.service in self.cert_faults:
                        # Another bad certificate would change nothing but churn the sidecar; the
                        # fault stays until the operator clears it.
                        continue
                    self._issue_for(session)
                    session.renewals += 1
                    self._push(session)
                elif kind == "op":
                    reply = self._operate(message)
                    reply["type"] = "reply"
                    reply["id"] = message.get("id")
                    writer.write(json.dumps(reply).encode() + b"\n")
        except (ConnectionError, asyncio.IncompleteReadError, KeyError, TypeError, ValueError):
            pass  # a broken or malformed hello ends this connection only
        finally:
            self._writers.discard(writer)
            if session is not None and session.writer is writer:
                # The endpoint stays registered: callers see connect failures until it is back,
                # as they would while a dead pod is still listed as an endpoint.
                session.writer = None
            writer.close()

    def _hello(self, message: dict, writer: asyncio.StreamWriter) -> SidecarSession:
        service, replica, port = str(message["service"]), int(message["replica"]), int(message["inbound_port"])
        if service not in self.policies:
            raise ValueError(f"unknown service {service}")
        key = (service, replica)
        session = self.sessions.get(key)
        moved = session is None or session.inbound_port != port
        if session is None:
            session = self.sessions[key] = SidecarSession(service, replica, port)
        session.inbound_port = port
        session.writer = writer
        if session.certificate is None or session.cert_fault != self.cert_faults.get(service):
            self._issue_for(session)  # a reconnecting sidecar keeps its certificate (its rotation loop renews it)
        if moved:
            self.push_all()  # every caller needs the new endpoint
        else:
            self._push(session)
        return session

    # ------------------------------------------------------------------ operator API

    def _operate(self, message: dict) -> dict:
        op = message.get("op")
        try:
            if op == "status":
                return {"ok": True, **self.status()}
            if op == "register_endpoint":
                self.plain_endpoints[(message["service"], int(message["replica"]))] = int(message["port"])
                self.push_all()
                return {"ok": True}
            if op == "issue_client_cert":
                cert = self.ca.issue(self.spiffe_id(message.get("service", LOADGEN_IDENTITY)), ttl_seconds=self.cert_ttl)
                return {"ok": True, "cert_pem": cert.cert_pem.decode(), "key_pem": cert.key_pem.decode(),
                        "spiffe_id": cert.spiffe_id, "root_pem": self.ca.root_pem.decode()}
            service = message.get("service")
            if service not in self.policies:
                return {"ok": False, "error": f"unknown service {service!r}"}
            policy = self.policies[service]
            if op == "set_traffic":
                self._set_policy_part(policy, "traffic", message["traffic"], traffic_from_dict,
                                      f"{service}.traffic", message.get("validate", True), None)
            elif op == "set_authorization":
                self._set_policy_part(policy, "authorization", message["authorization"], authorization_from_dict,
                                      f"{service}.authorization", message.get("validate", True), {service})
            elif op == "set_mtls_mode":
                if message["mode"] not in MTLS_MODES:
                    return {"ok": False, "error": f"mode must be one of {MTLS_MODES}"}
                policy.mtls_mode = message["mode"]
                self.push_all({service})
            elif op == "set_outbound_tls":
                # The schema's boolean: the text "false" is refused, not read as True.
                policy.outbound_tls = TLS["outbound_tls"].parse(message["enabled"], f"{service}.outbound_tls")
                self.push_all({service})
            elif op == "set_cert_fault":
                fault = message.get("fault")
                if fault not in (None, *CERT_FAULTS):
                    return {"ok": False, "error": f"fault must be one of {CERT_FAULTS} or null"}
                if fault is None:
                    self.cert_faults.pop(service, None)
                else:
                    self.cert_faults[service] = fault
                for session in self.sessions.values():
                    if session.service == service:
                        self._issue_for(session)
                self.push_all({service})
            else:
                return {"ok": False, "error": f"unknown op {op!r}"}
            return {"ok": True, "version": self.version}
        except (ConfigError, KeyError, TypeError, ValueError) as exc:
            return {"ok": False, "error": str(exc)}

    def _set_policy_part(self, policy: ServicePolicy, part: str, value: Any, validator, path: str,
                         validate: bool, services: set[str] | None) -> None:
        """Store a valid policy part and push it; an invalid one raises, or with validate=False is pushed
        once unchecked (so sidecars NACK it) while the store keeps the last valid value, so later
        pushes (mode changes, renewals, endpoints) are not refused because of it."""
        try:
            validator(value, path)
        except (ConfigError, KeyError, TypeError, ValueError):
            if validate:
                raise
            kept = getattr(policy, part)
            setattr(policy, part, value)
            try:
                self.push_all(services)
            finally:
                setattr(policy, part, kept)
            return
        setattr(policy, part, value)
        self.push_all(services)

    def status(self) -> dict:
        sidecars = [
            {"service": s.service, "replica": s.replica, "inbound_port": s.inbound_port,
             "connected": s.writer is not None, "pushed_version": s.pushed_version, "acked_version": s.acked_version,
             "nack": s.nack, "renewals": s.renewals,
             "in_sync": s.writer is not None and s.acked_version >= s.pushed_version}
            for s in self.sessions.values()
        ]
        return {"version": self.version, "sidecars": sidecars, "findings": self.findings()}

    def findings(self) -> list[dict]:
        """`analyze` findings for the topology this control plane serves (computed once: it is fixed)."""
        if self._findings is None:
            from sandbox.mesh.analyze import analyze

            self._findings = [to_jsonable(f) for f in analyze(self.topology)]
        return self._findings


async def operator_call(port: int, message: dict, *, timeout: float = 5.0) -> dict:
    """One operator request on a short connection (the supervisor keeps its own long-lived one)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, limit=1 << 22), timeout)
    try:
        writer.write(json.dumps({"type": "op", **message}).encode() + b"\n")
        line = await asyncio.wait_for(reader.readline(), timeout)
        return json.loads(line)
    finally:
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topology", required=True, help="topology YAML file")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert-ttl", type=float, default=3600.0)
    args = parser.parse_args()
    from sandbox.mesh.topology import load_topology

    async def run(stop: asyncio.Event) -> None:
        plane = ControlPlane(load_topology(args.topology), cert_ttl=args.cert_ttl)
        port = await plane.start(args.port)
        announce(component="control_plane", port=port, started=time.time())
        await stop.wait()
        await plane.stop()

    run_component(run)


if __name__ == "__main__":
    main()
