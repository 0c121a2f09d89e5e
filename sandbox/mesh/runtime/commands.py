"""What a learner (or a scenario, a form, a lab) can do to a running mesh: one typed command per action,
one validator, and the one place that turns a command into calls on a mesh.

A command as JSON is `{"action": "fail", "service": "b", "percent": 50, "status": 503}`; `parse_command`
checks it against the running topology and returns a frozen dataclass (or raises CommandError naming the
field and the reason); `apply_command` carries it out through the `Mesh` protocol, which both runtimes
(`ProcessMesh`, `InProcessMesh` in supervisor.py) implement.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from sandbox.mesh.config.model import Topology
from sandbox.mesh.config.schema import BEHAVIOUR, SchemaError, expect_number, show
from sandbox.mesh.controlplane.meshconfig import (
    MTLS_MODES,
    ConfigError,
    to_jsonable,
    traffic_from_dict,
)

CERT_FAULTS = ("expired", "foreign_ca", "wrong_spiffe", "none")
TARGETS = ("sidecar", "service", "control_plane")
MAX_RATE = 1000.0  # requests per second one load generator sends on this machine
# From the policy schema: a command may set what a topology's `behaviour` may say, and no more.
MAX_DELAY_MS = BEHAVIOUR["latency"].high * 1000.0
ERROR_STATUS = BEHAVIOUR["error_status"]


class CommandError(ValueError):
    """A command that cannot be applied; the message names the field and the reason.

    `field` is the command's field at fault ("percent", "traffic.retry.attempts"), or "" when the
    command as a whole is (an unknown action, a missing field); `reason` is the rest."""

    def __init__(self, field: str, reason: str = "") -> None:
        if not reason:  # CommandError("whole message")
            field, reason = "", field
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}" if field else reason)


# ====================================================================== the commands


@dataclass(frozen=True)
class Command:
    action: ClassVar[str] = ""


@dataclass(frozen=True)
class Fail(Command):
    """Replicas of `service` answer `percent`% of requests with `status` (an app fault, seen by every caller)."""

    action: ClassVar[str] = "fail"
    service: str
    percent: float
    status: int = 503
    replica: int | None = None


@dataclass(frozen=True)
class Slow(Command):
    action: ClassVar[str] = "slow"
    service: str
    ms: float
    replica: int | None = None


@dataclass(frozen=True)
class Hang(Command):
    action: ClassVar[str] = "hang"
    service: str
    replica: int | None = None


@dataclass(frozen=True)
class Heal(Command):
    """With a service: its replicas behave as the topology says again. Without: undo everything."""

    action: ClassVar[str] = "heal"
    service: str | None = None
    replica: int | None = None


@dataclass(frozen=True)
class Kill(Command):
    action: ClassVar[str] = "kill"
    service: str | None = None  # not needed for the control plane
    target: str = "sidecar"
    replica: int = 0


@dataclass(frozen=True)
class Restart(Command):
    action: ClassVar[str] = "restart"
    service: str | None = None  # not needed for the control plane
    target: str = "sidecar"
    replica: int = 0


@dataclass(frozen=True)
class Plaintext(Command):
    """The workload's sidecar calls its peers without TLS."""

    action: ClassVar[str] = "plaintext"
    service: str


@dataclass(frozen=True)
class Mtls(Command):
    """The workload's sidecar calls its peers over mTLS again."""

    action: ClassVar[str] = "mtls"
    service: str


@dataclass(frozen=True)
class MtlsMode(Command):
    action: ClassVar[str] = "mtls_mode"
    service: str
    mode: str


@dataclass(frozen=True)
class Cert(Command):
    action: ClassVar[str] = "cert"
    service: str
    fault: str  # expired | foreign_ca | wrong_spiffe | none


@dataclass(frozen=True)
class Deny(Command):
    action: ClassVar[str] = "deny"
    service: str
    source: str


@dataclass(frozen=True)
class Allow(Command):
    """Remove the authorization policy of `service` (every caller allowed again)."""

    action: ClassVar[str] = "allow"
    service: str


@dataclass(frozen=True)
class Rate(Command):
    action: ClassVar[str] = "rate"
    rps: float


@dataclass(frozen=True)
class Policy(Command):
    """Replace the traffic policy callers apply to `service`. validate=False pushes it unchecked, so the
    sidecars NACK a bad one (the lesson about versioned config)."""

    action: ClassVar[str] = "policy"
    service: str
    traffic: dict = field(default_factory=dict, hash=False)
    validate: bool = True


AnyCommand = (
    Fail | Slow | Hang | Heal | Kill | Restart | Plaintext | Mtls | MtlsMode | Cert | Deny | Allow | Rate | Policy
)
ACTIONS: dict[str, type[Command]] = {
    cls.action: cls
    for cls in (Fail, Slow, Hang, Heal, Kill, Restart, Plaintext, Mtls, MtlsMode, Cert, Deny, Allow, Rate, Policy)
}


# ====================================================================== what a command acts on


@runtime_checkable
class Mesh(Protocol):
    """A running mesh, as commands see it. ProcessMesh and InProcessMesh (supervisor.py) implement it."""

    topology: Topology

    async def set_behaviour(self, service: str, replica: int | None = None, **fields: Any) -> list[dict]: ...
    async def reset_behaviour(self, service: str, replica: int | None = None) -> list[dict]: ...
    async def kill(self, kind: str, service: str, replica: int = 0) -> Any: ...
    async def restart(self, kind: str, service: str, replica: int = 0) -> Any: ...
    def alive(self, kind: str, service: str, replica: int = 0) -> bool: ...
    async def set_traffic(self, service: str, traffic: dict, *, validate: bool = True) -> dict: ...
    async def set_authorization(self, service: str, authorization: dict | None, *, validate: bool = True) -> dict: ...
    async def deny(self, service: str, source: str) -> dict: ...
    async def set_mtls_mode(self, service: str, mode: str) -> dict: ...
    async def set_outbound_tls(self, service: str, enabled: bool) -> dict: ...
    async def set_cert_fault(self, service: str, fault: str | None) -> dict: ...
    async def status(self) -> dict: ...


class LoadControl(Protocol):
    """The load generator, as the `rate` command sees it."""

    rate: float
    base_rate: float  # the rate it started with (heal returns to it)


# ====================================================================== parsing


def parse_command(data: dict, topology: Topology | None) -> AnyCommand:
    """The command `data` spells, checked against `topology`; raises CommandError naming the field.
    With topology None only the command's shape is checked (a scenario file read on its own)."""
    if not isinstance(data, dict):
        raise CommandError("", f"a command must be a mapping with an `action`, got {type(data).__name__}")
    action = data.get("action")
    if not isinstance(action, str) or action not in ACTIONS:  # a list is unhashable: no TypeError
        raise CommandError("action", f"unknown action {_show(action)} (one of {', '.join(sorted(ACTIONS))})")
    cls = ACTIONS[action]
    fields_ = {f.name: f for f in dataclasses.fields(cls)}
    given = {k: v for k, v in data.items() if k != "action"}
    unknown = sorted(set(given) - set(fields_))
    if unknown:
        raise CommandError(f"unknown field(s) for {action}: {', '.join(map(str, unknown))}")
    missing = sorted(name for name, f in fields_.items() if _required(f) and given.get(name) is None)
    if missing:
        raise CommandError(f"{action} needs {', '.join(missing)}")
    return _PARSERS[action](given, topology)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _parse_fail(d: dict, topology: Topology | None) -> Fail:
    service = _service(d["service"], topology)
    status = _whole(d.get("status", ERROR_STATUS.default), "status", int(ERROR_STATUS.low), int(ERROR_STATUS.high))
    return Fail(
        service, _number(d["percent"], "percent", 0, 100), status, _replica(d.get("replica"), service, topology)
    )


def _parse_slow(d: dict, topology: Topology | None) -> Slow:
    service = _service(d["service"], topology)
    return Slow(service, _number(d["ms"], "ms", 0, MAX_DELAY_MS), _replica(d.get("replica"), service, topology))


def _parse_hang(d: dict, topology: Topology | None) -> Hang:
    service = _service(d["service"], topology)
    return Hang(service, _replica(d.get("replica"), service, topology))


def _parse_heal(d: dict, topology: Topology | None) -> Heal:
    if d.get("service") is None:
        if d.get("replica") is not None:
            raise CommandError("replica", "needs a service")
        return Heal()
    service = _service(d["service"], topology)
    return Heal(service, _replica(d.get("replica"), service, topology))


def _parse_process(cls: type, d: dict, topology: Topology | None) -> Kill | Restart:
    target = _choice(d.get("target", "sidecar"), "target", TARGETS)
    if target == "control_plane":
        return cls(None, "control_plane", 0)
    if d.get("service") is None:
        raise CommandError(f"{cls.action} needs service")
    service = _service(d["service"], topology)
    if target == "sidecar" and topology is not None and not topology.service(service).sidecar:
        raise CommandError("service", f"{service} runs without a sidecar")
    replica = _replica(d.get("replica"), service, topology)
    return cls(service, target, 0 if replica is None else replica)


def _parse_service_only(cls: type) -> Any:
    def parse(d: dict, topology: Topology | None) -> Command:
        service = _service(d["service"], topology)
        if topology is not None and not topology.service(service).sidecar:
            raise CommandError("service", f"{service} runs without a sidecar")
        return cls(service)

    return parse


def _parse_mtls_mode(d: dict, topology: Topology | None) -> MtlsMode:
    service = _service(d["service"], topology)
    return MtlsMode(service, _choice(d["mode"], "mode", MTLS_MODES))


def _parse_cert(d: dict, topology: Topology | None) -> Cert:
    service = _service(d["service"], topology)
    fault = "none" if d["fault"] is None else d["fault"]
    return Cert(service, _choice(fault, "fault", CERT_FAULTS))


def _parse_deny(d: dict, topology: Topology | None) -> Deny:
    service = _service(d["service"], topology)
    source = d["source"]
    names = [s.name for s in topology.services] if topology is not None else []
    if not isinstance(source, str) or (topology is not None and source not in (*names, "loadgen")):
        raise CommandError("source", f"unknown service {_show(source)} (one of {', '.join(names)}, loadgen)")
    return Deny(service, source)


def _parse_rate(d: dict, topology: Topology | None) -> Rate:
    rps = _number(d["rps"], "rps", 0, MAX_RATE)
    if rps <= 0:
        raise CommandError("rps", f"must be more than 0, got {_show(d['rps'])}")
    return Rate(rps)


def _parse_policy(d: dict, topology: Topology | None) -> Policy:
    service = _service(d["service"], topology)
    validate = d.get("validate", True)
    if not isinstance(validate, bool):
        raise CommandError("validate", f"must be true or false, got {_show(validate)}")
    traffic = d["traffic"]
    if not isinstance(traffic, dict):
        raise CommandError("traffic", f"must be a mapping, got {type(traffic).__name__}")
    if validate:
        # The same decoder the sidecars run on every push: what passes here, they accept.
        try:
            traffic_from_dict(traffic, "traffic")
        except (ConfigError, KeyError, TypeError, ValueError) as exc:
            field, _, reason = str(exc).partition(": ")
            raise CommandError(field, reason) if reason else CommandError(str(exc)) from exc
    return Policy(service, traffic, validate)


_PARSERS = {
    "fail": _parse_fail,
    "slow": _parse_slow,
    "hang": _parse_hang,
    "heal": _parse_heal,
    "kill": lambda d, t: _parse_process(Kill, d, t),
    "restart": lambda d, t: _parse_process(Restart, d, t),
    "plaintext": _parse_service_only(Plaintext),
    "mtls": _parse_service_only(Mtls),
    "mtls_mode": _parse_mtls_mode,
    "cert": _parse_cert,
    "deny": _parse_deny,
    "allow": lambda d, t: Allow(_service(d["service"], t)),
    "rate": _parse_rate,
    "policy": _parse_policy,
}


def _show(value: Any) -> str:
    if isinstance(value, (int, list, tuple, dict)) and not isinstance(value, bool):
        return show(value)  # the schema's: safe for a 5,000-digit number (repr raises) and a huge list
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _service(value: Any, topology: Topology | None) -> str:
    if topology is None:
        if not isinstance(value, str) or not value:
            raise CommandError("service", f"must be a service name, got {_show(value)}")
        return value
    names = [s.name for s in topology.services]
    if not isinstance(value, str) or value not in names:
        raise CommandError("service", f"unknown service {_show(value)} (one of {', '.join(names)})")
    return value


def _replica(value: Any, service: str, topology: Topology | None) -> int | None:
    if value is None:
        return None
    if topology is None:
        return int(_whole(value, "replica", 0, 1000))
    count = topology.service(service).replicas
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < count:
        raise CommandError("replica", f"{service} has replicas 0 to {count - 1}, got {_show(value)}")
    return value


def _number(value: Any, name: str, low: float, high: float) -> float:
    try:
        return expect_number(value, name, low, high)
    except SchemaError as exc:
        raise CommandError(name, exc.reason) from None


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CommandError(name, f"must be a whole number from {low} to {high}, got {_show(value)}")
    return value


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise CommandError(name, f"must be one of {', '.join(choices)}, got {_show(value)}")
    return value


# ====================================================================== JSON and words


def command_to_json(command: Command) -> dict:
    """The JSON spelling `parse_command` reads back (unset optional fields left out)."""
    out: dict[str, Any] = {"action": command.action}
    for f in dataclasses.fields(command):
        value = getattr(command, f.name)
        if value is None:
            continue
        if isinstance(command, Fail | Slow) and f.name in ("percent", "ms") and float(value).is_integer():
            value = int(value)
        out[f.name] = value
    return out


MTLS_MODE_WORDS = {
    "STRICT": "accepts only mTLS (STRICT)",
    "PERMISSIVE": "accepts mTLS and plain text (PERMISSIVE)",
    "DISABLE": "accepts only plain text (mTLS DISABLE)",
}
CERT_FAULT_WORDS = {
    "expired": "an expired certificate",
    "foreign_ca": "a certificate from a CA the mesh does not trust",
    "wrong_spiffe": "a certificate for a SPIFFE ID that is not its own",
}


def describe(command: Command) -> str:
    """What the command does, in plain words. A service name ("a", "cart") always follows the word
    "service", so the sentence reads as one whatever the name."""
    c: Any = command
    replicas = "" if getattr(c, "replica", None) is None else f" (replica {c.replica})"
    if isinstance(c, Fail):
        return f"service {c.service}{replicas} fails {c.percent:g}% of requests with {c.status}"
    if isinstance(c, Slow):
        return f"service {c.service}{replicas} takes {c.ms:g} ms per request"
    if isinstance(c, Hang):
        return f"service {c.service}{replicas} hangs: it accepts requests and never answers"
    if isinstance(c, Heal):
        if c.service is None:
            return "everything back as the topology says: faults, policies, certificates, processes and load rate"
        return f"service {c.service}{replicas} behaves as configured again"
    if isinstance(c, Kill | Restart):
        verb = "was killed" if isinstance(c, Kill) else "was restarted"
        if c.target == "control_plane":
            return f"the control plane {verb}"
        part = "sidecar" if c.target == "sidecar" else "process"
        return f"the {part} of service {c.service} (replica {c.replica}) {verb}"
    if isinstance(c, Plaintext):
        return f"the sidecar of service {c.service} calls its peers in plain text"
    if isinstance(c, Mtls):
        return f"the sidecar of service {c.service} calls its peers over mTLS"
    if isinstance(c, MtlsMode):
        return f"the sidecar of service {c.service} {MTLS_MODE_WORDS.get(c.mode, f'accepts {c.mode} mTLS')}"
    if isinstance(c, Cert):
        if c.fault == "none":
            return f"service {c.service} gets a valid certificate again"
        return f"service {c.service} gets {CERT_FAULT_WORDS.get(c.fault, 'a bad certificate')}"
    if isinstance(c, Deny):
        caller = "the load generator" if c.source == "loadgen" else f"service {c.source}"
        return f"service {c.service} refuses calls from {caller}"
    if isinstance(c, Allow):
        return f"service {c.service} accepts every caller again"
    if isinstance(c, Rate):
        return f"load rate set to {c.rps:g} requests per second"
    if isinstance(c, Policy):
        how = "" if c.validate else " (pushed unchecked)"
        return f"new traffic policy for calls to service {c.service}{how}"
    return c.action


# ====================================================================== applying


async def apply_command(mesh: Mesh, command: Command, *, load: LoadControl | None = None) -> str:
    """Carry out `command` on a running mesh; returns what was done, in plain words. Raises what the
    mesh raises (MeshError with the control plane's reason, for example) when it cannot be done."""
    c: Any = command
    if isinstance(c, Fail):
        await mesh.set_behaviour(c.service, c.replica, error_rate=c.percent / 100, error_status=c.status)
    elif isinstance(c, Slow):
        await mesh.set_behaviour(c.service, c.replica, latency_ms=c.ms)
    elif isinstance(c, Hang):
        await mesh.set_behaviour(c.service, c.replica, hang=True)
    elif isinstance(c, Heal):
        if c.service is None:
            await heal_everything(mesh, load=load)
        else:
            await mesh.reset_behaviour(c.service, c.replica)
    elif isinstance(c, Kill):
        await mesh.kill(c.target, c.service or "control-plane", c.replica)
    elif isinstance(c, Restart):
        await mesh.restart(c.target, c.service or "control-plane", c.replica)
    elif isinstance(c, Plaintext | Mtls):
        await mesh.set_outbound_tls(c.service, isinstance(c, Mtls))
    elif isinstance(c, MtlsMode):
        await mesh.set_mtls_mode(c.service, c.mode)
    elif isinstance(c, Cert):
        await mesh.set_cert_fault(c.service, None if c.fault == "none" else c.fault)
    elif isinstance(c, Deny):
        await mesh.deny(c.service, c.source)
    elif isinstance(c, Allow):
        await mesh.set_authorization(c.service, None)
    elif isinstance(c, Rate):
        if load is None:
            raise CommandError("rps", "no load generator is running")
        load.rate = c.rps
    elif isinstance(c, Policy):
        await mesh.set_traffic(c.service, c.traffic, validate=c.validate)
    else:
        raise CommandError("action", f"cannot apply {c!r}")
    return describe(command)


async def heal_everything(mesh: Mesh, *, load: LoadControl | None = None) -> None:
    """Every process running, and every fault, policy, certificate and mode as the topology says."""
    topology = mesh.topology
    if not mesh.alive("control_plane", "control-plane", 0):
        await mesh.restart("control_plane", "control-plane", 0)
    for svc in topology.services:
        for replica in range(svc.replicas):
            for kind in ("service", "sidecar") if svc.sidecar else ("service",):
                if not mesh.alive(kind, svc.name, replica):
                    await mesh.restart(kind, svc.name, replica)
    for svc in topology.services:
        await mesh.reset_behaviour(svc.name)
        await mesh.set_traffic(svc.name, to_jsonable(svc.traffic))
        await mesh.set_authorization(svc.name, to_jsonable(svc.authorization))
        if svc.sidecar:
            await mesh.set_mtls_mode(svc.name, svc.mtls_mode)
            await mesh.set_outbound_tls(svc.name, True)
            await mesh.set_cert_fault(svc.name, None)
    if load is not None:
        load.rate = load.base_rate
