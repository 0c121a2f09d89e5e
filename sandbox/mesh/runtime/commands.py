"""What a learner (or a scenario, a form, a lab) can do to a running mesh: one typed declaration per action.

Each declaration carries all of its command: its fields, how it is read from JSON (`parse`, through the
topology schema's checks), what it says to a learner (`describe`) and what it does to a mesh (`apply`).
`ACTIONS` is built from the declarations, so a new command is one class, its handler and its test.

A command as JSON is `{"action": "fail", "service": "b", "percent": 50, "status": 503}`; `parse_command`
checks it against the running topology and returns the frozen dataclass (or raises CommandError naming the
field and the reason). It is parsed once, where it enters; after that it travels as its type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from sandbox.mesh.config.model import Topology
from sandbox.mesh.config.schema import (
    BEHAVIOUR,
    MTLS_MODES,
    SchemaError,
    expect_boolean,
    expect_choice,
    expect_number,
    expect_whole,
    parse_traffic,
)
from sandbox.mesh.controlplane.ops import (
    CERT_FAULTS as CA_CERT_FAULTS,
)
from sandbox.mesh.controlplane.ops import (
    SetAuthorization,
    SetCertFault,
    SetMtlsMode,
    SetOutboundTls,
    SetTraffic,
)
from sandbox.mesh.runtime.command_base import (
    ACTIONS,
    Command,
    CommandError,
    LoadControl,
    Mesh,
    _checked,
    _replica,
    _service,
    _show,
    _sidecar_service,
    _whole_numbers_as_int,
    heal_everything,
    parse_command,
)
from sandbox.mesh.runtime.traffic_commands import TrafficCommand  # its import registers them in ACTIONS

CERT_FAULTS = (*CA_CERT_FAULTS, "none")  # what the `cert` command takes: the CA's faults, or none
TARGETS = ("sidecar", "service", "control_plane")
MAX_RATE = 1000.0  # requests per second one load generator sends on this machine
# From the policy schema: a command may set what a topology's `behaviour` may say, and no more.
MAX_DELAY_MS = BEHAVIOUR["latency"].high * 1000.0
ERROR_STATUS = BEHAVIOUR["error_status"]


def _replicas(c: Any) -> str:
    return "" if c.replica is None else f" (replica {c.replica})"


@dataclass(frozen=True)
class Fail(Command):
    """Replicas of `service` answer `percent`% of requests with `status` (an app fault, seen by every caller)."""

    action: ClassVar[str] = "fail"
    service: str
    percent: float
    status: int = 503
    replica: int | None = None

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> Fail:
        service = _service(d["service"], topology)
        low, high = int(ERROR_STATUS.low), int(ERROR_STATUS.high)
        status = _checked(expect_whole, d.get("status", ERROR_STATUS.default), "status", low, high)
        percent = _checked(expect_number, d["percent"], "percent", 0, 100)
        return cls(service, percent, status, _replica(d.get("replica"), service, topology))

    def describe(self) -> str:
        return f"service {self.service}{_replicas(self)} fails {self.percent:g}% of requests with {self.status}"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        await mesh.set_behaviour(self.service, self.replica, error_rate=self.percent / 100, error_status=self.status)

    def to_json(self) -> dict[str, Any]:
        return _whole_numbers_as_int(super().to_json(), "percent")


@dataclass(frozen=True)
class Slow(Command):
    action: ClassVar[str] = "slow"
    service: str
    ms: float
    replica: int | None = None

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> Slow:
        service = _service(d["service"], topology)
        ms = _checked(expect_number, d["ms"], "ms", 0, MAX_DELAY_MS)
        return cls(service, ms, _replica(d.get("replica"), service, topology))

    def describe(self) -> str:
        return f"service {self.service}{_replicas(self)} takes {self.ms:g} ms per request"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        await mesh.set_behaviour(self.service, self.replica, latency_ms=self.ms)

    def to_json(self) -> dict[str, Any]:
        return _whole_numbers_as_int(super().to_json(), "ms")


@dataclass(frozen=True)
class Hang(Command):
    action: ClassVar[str] = "hang"
    service: str
    replica: int | None = None

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> Hang:
        service = _service(d["service"], topology)
        return cls(service, _replica(d.get("replica"), service, topology))

    def describe(self) -> str:
        return f"service {self.service}{_replicas(self)} hangs: it accepts requests and never answers"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        await mesh.set_behaviour(self.service, self.replica, hang=True)


@dataclass(frozen=True)
class Heal(Command):
    """With a service: its replicas behave as the topology says again. Without: undo everything."""

    action: ClassVar[str] = "heal"
    service: str | None = None
    replica: int | None = None

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> Heal:
        if d.get("service") is None:
            if d.get("replica") is not None:
                raise CommandError("replica", "needs a service")
            return cls()
        service = _service(d["service"], topology)
        return cls(service, _replica(d.get("replica"), service, topology))

    def describe(self) -> str:
        if self.service is None:
            return "everything back as the topology says: faults, policies, certificates, processes and load rate"
        return f"service {self.service}{_replicas(self)} behaves as configured again"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        if self.service is None:
            await heal_everything(mesh, load=load)
        else:
            await mesh.reset_behaviour(self.service, self.replica)


@dataclass(frozen=True)
class _ProcessCommand(Command):
    service: str | None = None  # not needed for the control plane
    target: str = "sidecar"
    replica: int = 0
    verb: ClassVar[str] = ""

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> _ProcessCommand:
        target = _checked(expect_choice, d.get("target", "sidecar"), "target", TARGETS)
        if target == "control_plane":
            return cls(None, "control_plane", 0)
        if d.get("service") is None:
            raise CommandError(f"{cls.action} needs service")
        service = _service(d["service"], topology)
        if target == "sidecar" and topology is not None and not topology.service(service).sidecar:
            raise CommandError("service", f"{service} runs without a sidecar")
        replica = _replica(d.get("replica"), service, topology)
        return cls(service, target, 0 if replica is None else replica)

    def describe(self) -> str:
        if self.target == "control_plane":
            return f"the control plane {self.verb}"
        part = "sidecar" if self.target == "sidecar" else "process"
        return f"the {part} of service {self.service} (replica {self.replica}) {self.verb}"


@dataclass(frozen=True)
class Kill(_ProcessCommand):
    action: ClassVar[str] = "kill"
    verb: ClassVar[str] = "was killed"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        await mesh.kill(self.target, self.service or "control-plane", self.replica)


@dataclass(frozen=True)
class Restart(_ProcessCommand):
    action: ClassVar[str] = "restart"
    verb: ClassVar[str] = "was restarted"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        await mesh.restart(self.target, self.service or "control-plane", self.replica)


@dataclass(frozen=True)
class _SidecarCommand(Command):
    """A command on a workload's sidecar: only a service that runs with one."""

    service: str

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> _SidecarCommand:
        return cls(_sidecar_service(d["service"], topology))


@dataclass(frozen=True)
class Plaintext(_SidecarCommand):
    """The workload's sidecar calls its peers without TLS."""

    action: ClassVar[str] = "plaintext"

    def describe(self) -> str:
        return f"the sidecar of service {self.service} calls its peers in plain text"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        await mesh.operate(SetOutboundTls(self.service, False))


@dataclass(frozen=True)
class Mtls(_SidecarCommand):
    """The workload's sidecar calls its peers over mTLS again."""

    action: ClassVar[str] = "mtls"

    def describe(self) -> str:
        return f"the sidecar of service {self.service} calls its peers over mTLS"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        await mesh.operate(SetOutboundTls(self.service, True))


MTLS_MODE_WORDS = {
    "STRICT": "accepts only mTLS (STRICT)",
    "PERMISSIVE": "accepts mTLS and plain text (PERMISSIVE)",
    "DISABLE": "accepts only plain text (mTLS DISABLE)",
}


@dataclass(frozen=True)
class MtlsMode(Command):
    action: ClassVar[str] = "mtls_mode"
    service: str
    mode: str

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> MtlsMode:
        return cls(_service(d["service"], topology), _checked(expect_choice, d["mode"], "mode", MTLS_MODES))

    def describe(self) -> str:
        return f"the sidecar of service {self.service} {MTLS_MODE_WORDS.get(self.mode, f'accepts {self.mode} mTLS')}"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        await mesh.operate(SetMtlsMode(self.service, self.mode))


CERT_FAULT_WORDS = {
    "expired": "an expired certificate",
    "foreign_ca": "a certificate from a CA the mesh does not trust",
    "wrong_spiffe": "a certificate for a SPIFFE ID that is not its own",
}


@dataclass(frozen=True)
class Cert(Command):
    action: ClassVar[str] = "cert"
    service: str
    fault: str  # expired | foreign_ca | wrong_spiffe | none

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> Cert:
        fault = "none" if d["fault"] is None else d["fault"]
        return cls(_service(d["service"], topology), _checked(expect_choice, fault, "fault", CERT_FAULTS))

    def describe(self) -> str:
        if self.fault == "none":
            return f"service {self.service} gets a valid certificate again"
        return f"service {self.service} gets {CERT_FAULT_WORDS.get(self.fault, 'a bad certificate')}"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        await mesh.operate(SetCertFault(self.service, None if self.fault == "none" else self.fault))


@dataclass(frozen=True)
class Deny(Command):
    action: ClassVar[str] = "deny"
    service: str
    source: str

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> Deny:
        service = _service(d["service"], topology)
        source = d["source"]
        names = [s.name for s in topology.services] if topology is not None else []
        if not isinstance(source, str) or (topology is not None and source not in (*names, "loadgen")):
            raise CommandError("source", f"unknown service {_show(source)} (one of {', '.join(names)}, loadgen)")
        return cls(service, source)

    def describe(self) -> str:
        caller = "the load generator" if self.source == "loadgen" else f"service {self.source}"
        return f"service {self.service} refuses calls from {caller}"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        # Refused by authorization policy: a deny rule on the caller's SPIFFE ID.
        deny = {"deny": [{"sources": [mesh.topology.spiffe_id(self.source)]}]}
        await mesh.operate(SetAuthorization(self.service, deny))


@dataclass(frozen=True)
class Allow(Command):
    """Remove the authorization policy of `service` (every caller allowed again)."""

    action: ClassVar[str] = "allow"
    service: str

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> Allow:
        return cls(_service(d["service"], topology))

    def describe(self) -> str:
        return f"service {self.service} accepts every caller again"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        await mesh.operate(SetAuthorization(self.service, None))


@dataclass(frozen=True)
class Rate(Command):
    action: ClassVar[str] = "rate"
    rps: float

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> Rate:
        rps = _checked(expect_number, d["rps"], "rps", 0, MAX_RATE)
        if rps <= 0:
            raise CommandError("rps", f"must be more than 0, got {_show(d['rps'])}")
        return cls(rps)

    def describe(self) -> str:
        return f"load rate set to {self.rps:g} requests per second"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        if load is None:
            raise CommandError("rps", "no load generator is running")
        load.rate = self.rps


@dataclass(frozen=True)
class Policy(Command):
    """Replace the traffic policy callers apply to `service`. validate=False pushes it unchecked, so the
    sidecars NACK a bad one (the lesson about versioned config)."""

    action: ClassVar[str] = "policy"
    service: str
    traffic: dict = field(default_factory=dict, hash=False)
    validate: bool = True

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> Policy:
        service = _service(d["service"], topology)
        validate = _checked(expect_boolean, d.get("validate", True), "validate")
        traffic = d["traffic"]
        if not isinstance(traffic, dict):
            raise CommandError("traffic", f"must be a mapping, got {type(traffic).__name__}")
        if validate:
            # The same decoder the sidecars run on every push: what passes here, they accept.
            try:
                parse_traffic(traffic, "traffic")
            except (SchemaError, KeyError, TypeError, ValueError) as exc:
                field, _, reason = str(exc).partition(": ")
                raise CommandError(field, reason) if reason else CommandError(str(exc)) from exc
        return cls(service, traffic, validate)

    def describe(self) -> str:
        how = "" if self.validate else " (pushed unchecked)"
        return f"new traffic policy for calls to service {self.service}{how}"

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        await mesh.operate(SetTraffic(self.service, self.traffic, self.validate))


AnyCommand = (
    Fail | Slow | Hang | Heal | Kill | Restart | Plaintext | Mtls | MtlsMode | Cert | Deny | Allow | Rate | Policy
) | TrafficCommand


# ====================================================================== JSON, words and applying


def command_to_json(command: Command) -> dict:
    """The JSON spelling `parse_command` reads back (unset optional fields left out)."""
    return command.to_json()


def describe(command: Command) -> str:
    return command.describe()


async def apply_command(mesh: Mesh, command: Command, *, load: LoadControl | None = None) -> str:
    """Carry out `command` on a running mesh; returns what was done, in plain words. Raises what the
    mesh raises (MeshError with the control plane's reason, for example) when it cannot be done."""
    await command.apply(mesh, load)
    return command.describe()


# Callers import the whole vocabulary from here: the frame with the declarations.
__all__ = [
    "ACTIONS",
    "CERT_FAULTS",
    "Command",
    "CommandError",
    "LoadControl",
    "Mesh",
    "apply_command",
    "command_to_json",
    "describe",
    "heal_everything",
    "parse_command",
]
