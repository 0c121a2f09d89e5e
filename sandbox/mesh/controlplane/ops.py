"""The operator channel: every op the supervisor may send the control plane, declared once.

An op travels as JSON `{"op": "set_mtls_mode", "service": "b", "mode": "STRICT"}`. `to_json` writes it from
the declaration's fields and `op_from_json` reads it back through the same schema checks the topology uses,
so the control plane handles typed ops only. `replayed` says whether the supervisor gives the op again to a
control plane that restarted (it keeps no state but its policies, which these ops change).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from sandbox.mesh.config.schema import MTLS_MODES, TLS, SchemaError, expect_choice, expect_whole, show

# The certificate faults the CA can hand a workload on purpose (ca.py makes each one).
CERT_FAULTS = ("expired", "foreign_ca", "wrong_spiffe")


class OpError(ValueError):
    """An op the control plane cannot read; the message says which field and why."""


@dataclass(frozen=True)
class Op:
    name: ClassVar[str] = ""
    replayed: ClassVar[bool] = False

    def to_json(self) -> dict[str, Any]:
        return {"op": self.name, **dataclasses.asdict(self)}

    @classmethod
    def from_fields(cls, message: dict[str, Any]) -> Op:
        """The op `message` spells; a field left out takes its default, a required one missing is an OpError."""
        values = {}
        for f in dataclasses.fields(cls):
            if f.name in message:
                values[f.name] = message[f.name]
            elif f.default is dataclasses.MISSING:
                raise OpError(f"{cls.name} needs {f.name}")
        op = cls(**values)
        op.check()
        return op

    def check(self) -> None:
        """Raise OpError if a field's value is not one the control plane can use (read at the receiving end)."""

    @property
    def replay_key(self) -> tuple[str, str | None]:
        """Ops with the same key replace each other: only the latest is replayed."""
        return (self.name, getattr(self, "service", None))

    @property
    def kept_for_replay(self) -> bool:
        # An unchecked push is not kept: the control plane does not store it either.
        return self.replayed and getattr(self, "validate", True)


@dataclass(frozen=True)
class Status(Op):
    name: ClassVar[str] = "status"


@dataclass(frozen=True)
class RegisterEndpoint(Op):
    """A service replica without a sidecar listens on `port` (callers reach it in plain text)."""

    name: ClassVar[str] = "register_endpoint"
    service: str
    replica: int
    port: int

    def check(self) -> None:
        _checked(expect_whole, self.replica, "replica", 0, 1000)
        _checked(expect_whole, self.port, "port", 1, 65535)


@dataclass(frozen=True)
class IssueClientCert(Op):
    """A client certificate for `service`'s identity (the load generator's, a test client's); the operator
    made the key, and only its CSR comes here."""

    name: ClassVar[str] = "issue_client_cert"
    csr: str
    service: str = "loadgen"


@dataclass(frozen=True)
class SetTraffic(Op):
    name: ClassVar[str] = "set_traffic"
    replayed: ClassVar[bool] = True
    service: str
    traffic: dict
    validate: bool = True


@dataclass(frozen=True)
class SetAuthorization(Op):
    name: ClassVar[str] = "set_authorization"
    replayed: ClassVar[bool] = True
    service: str
    authorization: dict | None
    validate: bool = True


@dataclass(frozen=True)
class SetMtlsMode(Op):
    name: ClassVar[str] = "set_mtls_mode"
    replayed: ClassVar[bool] = True
    service: str
    mode: str

    def check(self) -> None:
        _checked(expect_choice, self.mode, "mode", MTLS_MODES)


@dataclass(frozen=True)
class SetOutboundTls(Op):
    name: ClassVar[str] = "set_outbound_tls"
    replayed: ClassVar[bool] = True
    service: str
    enabled: bool

    def check(self) -> None:
        # The schema's boolean: the text "false" is refused, not read as True.
        _checked(TLS["outbound_tls"].parse, self.enabled, f"{self.service}.outbound_tls")


@dataclass(frozen=True)
class SetCertFault(Op):
    """`service`'s sidecars get a bad certificate on purpose; None gives them a valid one again."""

    name: ClassVar[str] = "set_cert_fault"
    replayed: ClassVar[bool] = True
    service: str
    fault: str | None = None

    def check(self) -> None:
        if self.fault is not None:
            _checked(expect_choice, self.fault, "fault", CERT_FAULTS)


OPS: dict[str, type[Op]] = {
    cls.name: cls
    for cls in (
        Status,
        RegisterEndpoint,
        IssueClientCert,
        SetTraffic,
        SetAuthorization,
        SetMtlsMode,
        SetOutboundTls,
        SetCertFault,
    )
}

# The ops that name one of the topology's services (issue_client_cert may name any identity).
PER_SERVICE_OPS = (SetTraffic, SetAuthorization, SetMtlsMode, SetOutboundTls, SetCertFault)


def op_from_json(message: Any) -> Op:
    """The typed op a JSON message spells, or OpError saying what is wrong with it."""
    if not isinstance(message, dict):
        raise OpError(f"an op must be a mapping, got {show(message)}")
    cls = OPS.get(message.get("op")) if isinstance(message.get("op"), str) else None
    if cls is None:
        raise OpError(f"unknown op {message.get('op')!r}")
    try:
        return cls.from_fields({k: v for k, v in message.items() if k not in ("op", "id", "token", "type")})
    except TypeError as exc:
        raise OpError(f"{cls.name}: {exc}") from None


def _checked(check: Any, *args: Any) -> None:
    try:
        check(*args)
    except SchemaError as exc:
        raise OpError(str(exc)) from None
