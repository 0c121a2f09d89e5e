"""The frame of every learner command: its error, what it acts on (the `Mesh` protocol), the `Command` base
that registers each declaration in ACTIONS, the one `parse_command`, and the field checks declarations share.
The declarations themselves are in commands.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from sandbox.mesh.config.model import Service, Topology
from sandbox.mesh.config.schema import SchemaError, expect_whole, show
from sandbox.mesh.controlplane.meshconfig import to_jsonable
from sandbox.mesh.controlplane.ops import Op, SetAuthorization, SetCertFault, SetMtlsMode, SetOutboundTls, SetTraffic


class CommandError(ValueError):
    """A command that cannot be applied; the message names the field and the reason.

    `field` is the command's field at fault ("percent", "traffic.retry.attempts"), or "" when the
    command as a whole is (an unknown action, a missing field); `reason` is the rest."""

    def __init__(self, field: str, reason: str = "") -> None:
        if not reason:  # CommandError("whole message")
            field, reason = "", field
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}" if field else reason)


# ====================================================================== what a command acts on


@runtime_checkable
class Mesh(Protocol):
    """A running mesh, as commands see it. ProcessMesh and InProcessMesh (supervisor.py) implement it."""

    topology: Topology

    async def operate(self, op: Op) -> dict: ...
    async def set_behaviour(self, service: str, replica: int | None = None, **fields: Any) -> list[dict]: ...
    async def reset_behaviour(self, service: str, replica: int | None = None) -> list[dict]: ...
    async def kill(self, kind: str, service: str, replica: int = 0) -> int | None: ...  # the pid, if a process
    async def restart(self, kind: str, service: str, replica: int = 0) -> None: ...
    def alive(self, kind: str, service: str, replica: int = 0) -> bool: ...


class LoadControl(Protocol):
    """The load generator, as the `rate` command sees it."""

    rate: float
    base_rate: float  # the rate it started with (heal returns to it)


ACTIONS: dict[str, type[Command]] = {}


@dataclass(frozen=True)
class Command:
    """One learner command. A subclass names its `action` and is registered in ACTIONS by that name."""

    action: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.action:
            ACTIONS[cls.action] = cls

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> Command:
        """The command `d` spells (its fields already known present); CommandError names a bad one."""
        raise NotImplementedError

    def describe(self) -> str:
        """What the command does, in plain words. A service name ("a", "cart") always follows the word
        "service", so the sentence reads as one whatever the name."""
        raise NotImplementedError

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """The JSON spelling `parse_command` reads back (unset optional fields left out)."""
        out: dict[str, Any] = {"action": self.action}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = value
        return out


# ====================================================================== parsing


def parse_command(data: dict, topology: Topology | None) -> Command:
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
    return cls.parse(given, topology)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _show(value: Any) -> str:
    if isinstance(value, (int, list, tuple, dict)) and not isinstance(value, bool):
        return show(value)  # the schema's: safe for a 5,000-digit number (repr raises) and a huge list
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _checked(expect: Callable[..., Any], value: Any, name: str, *bounds: Any) -> Any:
    """`value` through one of the schema's `expect_*` checks; its refusal as a CommandError on `name`."""
    try:
        return expect(value, name, *bounds)
    except SchemaError as exc:
        raise CommandError(name, exc.reason) from None


def _service(value: Any, topology: Topology | None) -> str:
    if topology is None:
        if not isinstance(value, str) or not value:
            raise CommandError("service", f"must be a service name, got {_show(value)}")
        return value
    names = [s.name for s in topology.services]
    if not isinstance(value, str) or value not in names:
        raise CommandError("service", f"unknown service {_show(value)} (one of {', '.join(names)})")
    return value


def _sidecar_service(value: Any, topology: Topology | None) -> str:
    service = _service(value, topology)
    if topology is not None and not topology.service(service).sidecar:
        raise CommandError("service", f"{service} runs without a sidecar")
    return service


def _replica(value: Any, service: str, topology: Topology | None) -> int | None:
    if value is None:
        return None
    if topology is None:
        return _checked(expect_whole, value, "replica", 0, 1000)
    count = topology.service(service).replicas
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < count:
        raise CommandError("replica", f"{service} has replicas 0 to {count - 1}, got {_show(value)}")
    return value


def _whole_numbers_as_int(out: dict[str, Any], name: str) -> dict[str, Any]:
    # 50.0 reads back as 50: the JSON a learner wrote, not the float it became.
    if float(out[name]).is_integer():
        out[name] = int(out[name])
    return out


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
        for op in _as_configured(svc):
            await mesh.operate(op)
    if load is not None:
        load.rate = load.base_rate


def _as_configured(svc: Service) -> list[Op]:
    """The ops that put `svc`'s policies, mode, TLS and certificate back as its topology says."""
    ops: list[Op] = [
        SetTraffic(svc.name, to_jsonable(svc.traffic)),
        SetAuthorization(svc.name, to_jsonable(svc.authorization)),
    ]
    if svc.sidecar:
        ops += [SetMtlsMode(svc.name, svc.mtls_mode), SetOutboundTls(svc.name, True), SetCertFault(svc.name, None)]
    return ops
