"""How the control plane carries out each operator op: one handler per op type, dispatched from one table. A part of ControlPlane (control_plane.py), whose policies and sessions they change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.mesh.config.schema import SchemaError, parse_traffic
from sandbox.mesh.controlplane.ca import (
    CsrRejected,
    public_key_of_csr,
)
from sandbox.mesh.controlplane.meshconfig import authorization_from_dict
from sandbox.mesh.controlplane.ops import (
    PER_SERVICE_OPS,
    IssueClientCert,
    Op,
    OpError,
    RegisterEndpoint,
    SetAuthorization,
    SetCertFault,
    SetMtlsMode,
    SetOutboundTls,
    SetTraffic,
    Status,
    op_from_json,
)


class OperatorOps:
    def _operate(self, message: dict) -> dict:
        """One operator op, read through its declaration (ops.py) and handled by the one entry of its type."""
        try:
            op = op_from_json(message)
            service = getattr(op, "service", None)
            if isinstance(op, PER_SERVICE_OPS) and service not in self.policies:
                return {"ok": False, "error": f"unknown service {service!r}"}
            return {"ok": True, **(self._handlers[type(op)](op) or {"version": self.version})}
        except (SchemaError, CsrRejected, OpError, KeyError, TypeError, ValueError) as exc:
            return {"ok": False, "error": str(exc)}

    @property
    def _handlers(self) -> dict[type[Op], Callable[[Any], dict | None]]:
        return {
            Status: lambda op: self.status(),
            RegisterEndpoint: self._register_endpoint,
            IssueClientCert: self._issue_client_cert,
            SetTraffic: self._set_traffic,
            SetAuthorization: self._set_authorization,
            SetMtlsMode: self._set_mtls_mode,
            SetOutboundTls: self._set_outbound_tls,
            SetCertFault: self._set_cert_fault,
        }

    def _register_endpoint(self, op: RegisterEndpoint) -> None:
        self.plain_endpoints[(op.service, op.replica)] = op.port
        self.push_all()

    def _issue_client_cert(self, op: IssueClientCert) -> dict:
        # The operator may ask for any identity (the load generator's, a test client's); the key
        # is made by the operator and only its CSR comes here.
        spiffe_id = self.spiffe_id(op.service)
        cert = self.ca.issue(spiffe_id, ttl_seconds=self.cert_ttl, public_key=public_key_of_csr(op.csr, spiffe_id))
        return {
            "cert_pem": cert.cert_pem.decode(),
            "spiffe_id": cert.spiffe_id,
            "not_after": cert.not_after.timestamp(),
            "root_pem": self.ca.root_pem.decode(),
        }

    def _set_traffic(self, op: SetTraffic) -> None:
        self._set_policy_part(
            op.service, "traffic", op.traffic, parse_traffic, f"{op.service}.traffic", op.validate, None
        )

    def _set_authorization(self, op: SetAuthorization) -> None:
        path = f"{op.service}.authorization"
        self._set_policy_part(
            op.service, "authorization", op.authorization, authorization_from_dict, path, op.validate, {op.service}
        )

    def _set_mtls_mode(self, op: SetMtlsMode) -> None:
        self.policies[op.service].mtls_mode = op.mode
        self.push_all({op.service})

    def _set_outbound_tls(self, op: SetOutboundTls) -> None:
        self.policies[op.service].outbound_tls = op.enabled
        self.push_all({op.service})

    def _set_cert_fault(self, op: SetCertFault) -> None:
        if op.fault is None:
            self.cert_faults.pop(op.service, None)
        else:
            self.cert_faults[op.service] = op.fault
        for session in self.sessions.values():
            if session.service == op.service:
                self._issue_for(session)
        self.push_all({op.service})

    def _set_policy_part(
        self, service: str, part: str, value: Any, validator, path: str, validate: bool, services: set[str] | None
    ) -> None:
        """Store a valid policy part and push it; an invalid one raises, or with validate=False is pushed
        once unchecked (so sidecars NACK it) as a candidate that never enters the store, so later
        pushes (mode changes, renewals, endpoints) are not refused because of it."""
        try:
            validator(value, path)
        except (SchemaError, KeyError, TypeError, ValueError):
            if validate:
                raise
            self.push_all(services, candidate=(service, part, value))
            return
        setattr(self.policies[service], part, value)
        self.push_all(services)
