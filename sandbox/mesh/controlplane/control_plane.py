"""The control plane: endpoint registry, policy store, the CA, and versioned pushes each sidecar ACKs or NACKs.

Speaks JSON lines over a Unix socket inside the experiment's own directory (mode 0700). Sidecars say
`hello` (and later `renew`, `ack`, `nack`); the supervisor sends `op` messages (change a policy, cause
a certificate fault, ask for status) and gets a `reply` for each.

Nobody is trusted for being local. A sidecar's `hello` carries the per-replica bootstrap token the
supervisor gave that replica (the analogue of Linkerd's service-account token): the token, not the
message, says which service and replica it is. The sidecar makes its own key and sends a CSR; the CA
signs it for the token's identity only, and private keys never cross the socket. Every `op` carries
the experiment's operator token. A wrong or missing token gets one "refused" line and a closed
connection: no policy, no endpoints, no certificate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.mesh.config.model import Topology
from sandbox.mesh.controlplane.ca import (
    CertificateAuthority,
    CsrRejected,
    PublicKey,
    WorkloadCertificate,
    public_key_der,
    public_key_of_csr,
)
from sandbox.mesh.controlplane.meshconfig import (
    to_jsonable,
)
from sandbox.mesh.controlplane.operator import REFUSED
from sandbox.mesh.controlplane.operator_ops import OperatorOps
from sandbox.mesh.controlplane.sessions import ServicePolicy, SidecarSession, new_token, token_matches
from sandbox.mesh.process import announce, close_server, read_secrets, run_component

LOADGEN_IDENTITY = "loadgen"  # the load generator and test clients speak mTLS as this service account
AUTHENTICATE_WITHIN = 10.0  # seconds a connection may stay open without a sidecar session behind it


def _answered(session: SidecarSession, kind: str, message: dict) -> None:
    """A sidecar's ACK or NACK of a pushed version (one this control plane never pushed is ignored)."""
    version = message.get("version")
    if not isinstance(version, int) or version > session.pushed_version:
        return  # not an answer to anything this control plane pushed
    if kind == "ack":
        session.acked_version = max(session.acked_version, version)
        if session.nack is not None and session.nack["version"] <= version:
            session.nack = None  # a later accepted version supersedes the refusal
    else:
        session.nack = {"version": version, "reason": str(message.get("reason", ""))}


@dataclass
class ControlPlane(OperatorOps):
    topology: Topology
    cert_ttl: float = 3600.0
    ca: CertificateAuthority | None = None
    version: int = 0
    policies: dict[str, ServicePolicy] = field(default_factory=dict)
    sessions: dict[tuple[str, int], SidecarSession] = field(default_factory=dict)
    plain_endpoints: dict[tuple[str, int], int] = field(default_factory=dict)  # workloads without a sidecar
    cert_faults: dict[str, str] = field(default_factory=dict)
    # Secrets: the operator's, and each sidecar replica's bootstrap token. Made here when not given,
    # so a control plane built without them is closed, not open.
    operator_token: str = field(default_factory=new_token)
    bootstrap_tokens: dict[tuple[str, int], str] = field(default_factory=dict)
    socket_path: str = ""

    def __post_init__(self) -> None:
        if self.ca is None:
            self.ca = CertificateAuthority.create(self.topology.trust_domain)
        for svc in self.topology.services:
            self.policies[svc.name] = ServicePolicy(
                traffic=to_jsonable(svc.traffic),
                authorization=to_jsonable(svc.authorization),
                mtls_mode=svc.mtls_mode,
                sidecar=svc.sidecar,
            )
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._findings: list[dict] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, socket_path: str) -> str:
        """Listen on `socket_path`, whose directory must be the experiment's private one (mode 0700)."""
        directory = os.path.dirname(os.path.abspath(socket_path))
        mode = os.stat(directory).st_mode & 0o777
        if mode & 0o077:
            raise PermissionError(
                f"{directory} is mode {mode:o}: the control socket needs a directory only its owner can enter"
            )
        self._server = await asyncio.start_unix_server(self._on_connection, path=socket_path, limit=1 << 22)
        os.chmod(socket_path, 0o600)
        self.socket_path = socket_path
        return socket_path

    async def stop(self) -> None:
        if self._server is not None:
            await close_server(self._server, self._writers)
        if self.socket_path:
            try:
                os.unlink(self.socket_path)
            except FileNotFoundError:
                pass

    def bootstrap_token(self, service: str, replica: int) -> str:
        """The token a replica's sidecar must present (made on first ask, e.g. for in-process meshes)."""
        return self.bootstrap_tokens.setdefault((service, replica), new_token())

    def _identity_of(self, token: object) -> tuple[str, int] | None:
        """The (service, replica) a bootstrap token was made for, or None. Every entry is compared."""
        found = None
        for key, expected in self.bootstrap_tokens.items():
            if token_matches(token, expected):
                found = key
        return found

    # ------------------------------------------------------------------ documents

    def spiffe_id(self, service: str) -> str:
        return self.topology.spiffe_id(service)

    def _issue(self, service: str, public_key: PublicKey) -> WorkloadCertificate:
        """Sign `public_key` for `service`, with the operator's certificate fault if one is set."""
        spiffe_id = self.spiffe_id(service)
        fault = self.cert_faults.get(service)
        if fault == "expired":
            return self.ca.issue_expired(spiffe_id, public_key=public_key)
        if fault == "foreign_ca":
            return self.ca.issue_foreign(spiffe_id, ttl_seconds=self.cert_ttl, public_key=public_key)
        if fault == "wrong_spiffe":
            return self.ca.issue_wrong_identity(spiffe_id, ttl_seconds=self.cert_ttl, public_key=public_key)
        return self.ca.issue(spiffe_id, ttl_seconds=self.cert_ttl, public_key=public_key)

    def _issue_for(self, session: SidecarSession) -> None:
        """(Re)sign the key of the sidecar's latest CSR (a fault change re-signs the same key)."""
        session.cert_fault = self.cert_faults.get(session.service)
        session.certificate = self._issue(session.service, session.public_key)

    def endpoints_of(self, service: str) -> list[dict]:
        policy = self.policies[service]
        found = []
        if policy.sidecar:
            for session in sorted(self.sessions.values(), key=lambda s: s.replica):
                if session.service == service:
                    found.append(
                        {
                            "service": service,
                            "host": "127.0.0.1",
                            "port": session.inbound_port,
                            "spiffe_id": self.spiffe_id(service),
                            "replica": session.replica,
                        }
                    )
        else:
            for (name, replica), port in sorted(self.plain_endpoints.items()):
                if name == service:
                    found.append(
                        {"service": service, "host": "127.0.0.1", "port": port, "spiffe_id": "", "replica": replica}
                    )
        return found

    def document_for(self, session: SidecarSession, candidate: tuple[str, str, Any] | None = None) -> dict:
        """The config for one sidecar; `candidate` (service, part, value) stands in for that stored part."""

        def part(service: str, name: str) -> Any:
            if candidate is not None and candidate[:2] == (service, name):
                return candidate[2]
            return getattr(self.policies[service], name)

        policy = self.policies[session.service]
        cert = session.certificate
        not_before = cert.not_before.timestamp() if cert.not_before else None
        return {
            "version": session.pushed_version,
            "service": session.service,
            "mtls_mode": policy.mtls_mode,
            "outbound_tls": policy.outbound_tls,
            "authorization": part(session.service, "authorization"),
            "destinations": {
                name: {"traffic": part(name, "traffic"), "endpoints": self.endpoints_of(name), "sidecar": p.sidecar}
                for name, p in self.policies.items()
            },
            "certificate": {
                # No key: the sidecar holds the private key that matches this certificate.
                "cert_pem": cert.cert_pem.decode(),
                "spiffe_id": cert.spiffe_id,
                "not_after": cert.not_after.timestamp(),
                "not_before": not_before,
                # A changed fault tells the sidecar this is a new identity, not a routine renewal.
                "fault": session.cert_fault,
            },
            "root_pem": self.ca.root_pem.decode(),
        }

    def _push(self, session: SidecarSession, candidate: tuple[str, str, Any] | None = None) -> None:
        if session.writer is None or session.writer.is_closing():
            return
        self.version += 1
        session.pushed_version = self.version
        message = {"type": "config", "version": self.version, "config": self.document_for(session, candidate)}
        session.writer.write(json.dumps(message).encode() + b"\n")

    def push_all(self, services: set[str] | None = None, candidate: tuple[str, str, Any] | None = None) -> None:
        for session in self.sessions.values():
            if services is None or session.service in services:
                self._push(session, candidate)

    # ------------------------------------------------------------------ connections

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        session: SidecarSession | None = None
        try:
            while True:
                # Only a sidecar's session may idle; anyone else says what they want at once or is dropped.
                line = await (
                    reader.readline()
                    if session is not None
                    else asyncio.wait_for(reader.readline(), AUTHENTICATE_WITHIN)
                )
                if not line:
                    break
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    continue  # one garbled line does not end a sidecar's session
                if not isinstance(message, dict):
                    continue
                kind = message.get("type")
                if kind not in ("hello", "op") and session is None:
                    await self._refuse(writer)  # acks, nacks and renewals come only after a valid hello
                    return
                if kind == "hello":
                    accepted = self._hello(message, writer)
                    if accepted is None:
                        await self._refuse(writer)
                        return
                    session = accepted
                elif kind in ("ack", "nack") and session is not None:
                    _answered(session, kind, message)
                elif kind == "renew" and session is not None:
                    self._renew(session, message, writer)
                elif kind == "op":
                    if not token_matches(message.get("token"), self.operator_token):
                        await self._refuse(writer)
                        return
                    reply = self._operate(message)
                    reply["type"] = "reply"
                    reply["id"] = message.get("id")
                    writer.write(json.dumps(reply).encode() + b"\n")
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, KeyError, TypeError, ValueError):
            pass  # a broken or malformed hello ends this connection only
        finally:
            self._writers.discard(writer)
            if session is not None and session.writer is writer:
                # The endpoint stays registered: callers see connect failures until it is back,
                # as they would while a dead pod is still listed as an endpoint.
                session.writer = None
            writer.close()

    def _renew(self, session: SidecarSession, message: dict, writer: asyncio.StreamWriter) -> None:
        """A sidecar's CSR at half-life: a new certificate for its new key, unless a fault is set on purpose."""
        try:
            public_key = public_key_of_csr(message.get("csr", ""), self.spiffe_id(session.service))
        except CsrRejected as exc:
            writer.write(json.dumps({"type": "renew_refused", "reason": str(exc)}).encode() + b"\n")
            return
        if session.service in self.cert_faults:
            # Another bad certificate would change nothing but churn the sidecar; the
            # fault stays until the operator clears it.
            return
        session.public_key = public_key
        self._issue_for(session)
        session.renewals += 1
        self._push(session)

    async def _refuse(self, writer: asyncio.StreamWriter) -> None:
        writer.write(json.dumps({"type": REFUSED}).encode() + b"\n")
        try:
            await writer.drain()
        except ConnectionError:
            pass

    def _hello(self, message: dict, writer: asyncio.StreamWriter) -> SidecarSession | None:
        """The session of the replica the bootstrap token belongs to, or None (refused, nothing changed).

        The token names the replica; a hello that claims another one, or a CSR for another identity,
        is refused, so a stranger cannot take over a session and its config updates."""
        key = self._identity_of(message.get("token"))
        if key is None or (message.get("service"), message.get("replica")) != key:
            return None
        service, replica = key
        if service not in self.policies:
            return None
        port = message.get("inbound_port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            return None
        try:
            public_key = public_key_of_csr(message.get("csr", ""), self.spiffe_id(service))
        except CsrRejected:
            return None
        session = self.sessions.get(key)
        moved = session is None or session.inbound_port != port
        if session is None:
            session = self.sessions[key] = SidecarSession(service, replica, port)
        session.inbound_port = port
        session.writer = writer
        same_key = session.public_key is not None and public_key_der(session.public_key) == public_key_der(public_key)
        session.public_key = public_key
        if not same_key or session.certificate is None or session.cert_fault != self.cert_faults.get(service):
            # A reconnecting sidecar with the same key keeps its certificate (its rotation loop renews
            # it); a restarted one made a new key and needs a certificate for it.
            self._issue_for(session)
        if moved:
            self.push_all()  # every caller needs the new endpoint
        else:
            self._push(session)
        return session

    # ------------------------------------------------------------------ operator API

    def status(self) -> dict:
        sidecars = [
            {
                "service": s.service,
                "replica": s.replica,
                "inbound_port": s.inbound_port,
                "connected": s.writer is not None,
                "pushed_version": s.pushed_version,
                "acked_version": s.acked_version,
                "nack": s.nack,
                "renewals": s.renewals,
                "in_sync": s.writer is not None and s.acked_version >= s.pushed_version,
            }
            for s in self.sessions.values()
        ]
        # cert_faults: the one record of which services were handed a bad certificate on purpose.
        return {
            "version": self.version,
            "sidecars": sidecars,
            "findings": self.findings(),
            "cert_faults": dict(self.cert_faults),
        }

    def findings(self) -> list[dict]:
        """`analyze` findings for the topology this control plane serves (computed once: it is fixed)."""
        if self._findings is None:
            from sandbox.mesh.controlplane.analyze import analyze

            self._findings = [to_jsonable(f) for f in analyze(self.topology)]
        return self._findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topology", required=True, help="topology YAML file")
    parser.add_argument("--socket", required=True, help="Unix socket path, in a directory only its owner can enter")
    parser.add_argument("--cert-ttl", type=float, default=3600.0)
    args = parser.parse_args()
    from sandbox.mesh.config.topology import load_topology

    # Secrets come on stdin, never in argv (which any local user can read in /proc).
    secrets_doc = read_secrets()
    tokens = {(entry["service"], int(entry["replica"])): entry["token"] for entry in secrets_doc["bootstrap_tokens"]}

    async def run(stop: asyncio.Event) -> None:
        topology = load_topology(args.topology)
        ca = None
        if "ca_pem" in secrets_doc:  # the supervisor's CA: a restarted control plane signs with the same root
            ca = CertificateAuthority.from_pem(
                topology.trust_domain, secrets_doc["ca_pem"].encode(), secrets_doc["ca_key_pem"].encode()
            )
        plane = ControlPlane(
            topology,
            cert_ttl=args.cert_ttl,
            ca=ca,
            operator_token=secrets_doc["operator_token"],
            bootstrap_tokens=tokens,
        )
        path = await plane.start(args.socket)
        announce(component="control_plane", socket=path, started=time.time())
        await stop.wait()
        await plane.stop()
        try:
            os.rmdir(os.path.dirname(path))  # the experiment's private directory, empty once the socket is gone
        except OSError:
            pass  # not empty, or already removed by the supervisor

    run_component(run)


if __name__ == "__main__":
    main()
