"""What a running experiment tells its consumers: typed events, and their JSON spelling.

The experiment runtime (`experiment.py`) emits these to a callback once a second (a snapshot) and
whenever something happens (a command applied or refused, a process exit, a NACK, a finding, the
end). The command line prints them; the site's Celery task writes them to a Redis stream as JSON
and the live view reads them back with `event_from_json`. Plain data, no I/O.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class Attempt:
    """One try of one request as the caller's sidecar made it."""

    status: int  # 0 when no response arrived (connect failure, reset, timeout)
    flags: list[str] = field(default_factory=list)  # Envoy-style: UF, UO, URX, UT, UH, NR, FI, DI, ...
    endpoint: str = ""  # "b-0" (service-replica) or "" when none was chosen
    backoff_ms: float = 0.0  # the wait before this try (0 for the first)
    duration_ms: float = 0.0


@dataclass
class RequestRecord:
    """One request between two services, with every attempt; read once through a cursor."""

    id: str
    source: str
    destination: str
    method: str
    path: str
    status: int
    flags: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    mtls: bool = False
    trace_id: str = ""
    detail: str = ""
    tls_reason: str = ""  # why the TLS handshake failed ("certificate expired", ...), "" when it did not


@dataclass
class ServiceSnapshot:
    """One service over the last interval: what its replicas answered, and whether they live."""

    name: str
    replicas: int
    rps: float  # requests its apps answered per second
    actual_success: float | None  # 2xx fraction of what its apps answered; None when idle
    mtls_mode: str  # STRICT | PERMISSIVE | DISABLE, as pushed to its sidecar
    alive: dict[str, bool] = field(default_factory=dict)  # "app-0", "sidecar-0", ... -> running?
    fault: str = ""  # a short description of an injected fault ("50% 503", "+200 ms", "hang"), "" if none
    cert_fault: str = ""  # expired | foreign_ca | wrong_spiffe | ""
    tls_failures: dict[str, int] = field(default_factory=dict)  # handshakes its sidecar refused, by reason


@dataclass
class EdgeSnapshot:
    """Calls from `source` to `destination` over the last interval, as the caller's sidecars saw them."""

    source: str  # "loadgen" for the entry edge
    destination: str
    rps: float
    effective_success: float | None  # what the caller saw (after retries); None when idle
    actual_success: float | None  # what the callee's replicas returned, every attempt counted
    p50_ms: float
    p95_ms: float
    p99_ms: float
    retries: int = 0
    retry_budget_exhausted: int = 0
    circuit: str = "closed"  # closed | open
    pending_overflow: int = 0  # UO in this interval
    ejected: list[str] = field(default_factory=list)  # endpoints out of rotation, "b-1"
    tls_failures: dict[str, int] = field(default_factory=dict)  # reason -> count in this interval
    flags: dict[str, int] = field(default_factory=dict)  # response flag -> count in this interval
    mtls: bool = False  # did this interval's traffic on the edge go over mTLS


@dataclass
class Event:
    kind: ClassVar[str] = "event"
    t: float = 0.0  # seconds since the experiment's load started

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, **dataclasses.asdict(self)}, separators=(",", ":"), default=str)


@dataclass
class Started(Event):
    kind: ClassVar[str] = "started"
    topology: str = ""
    runtime: str = ""  # process | in_process
    ready_seconds: float = 0.0
    processes: int = 0
    pgid: int | None = None  # the process group to kill if the owner is lost (process runtime)
    services: list[str] = field(default_factory=list)
    edges: list[list[str]] = field(default_factory=list)  # [source, destination], entry edge first
    control_socket: str = ""  # the control plane's Unix socket (a path, not a secret)
    entry_ports: list[int] = field(default_factory=list)  # where the load generator sends its requests


@dataclass
class Snapshot(Event):
    kind: ClassVar[str] = "snapshot"
    rate: float = 0.0  # the load generator's target requests per second
    effective_success: float | None = None  # at the entry, as the load generator saw it
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0  # sent by the load generator in this interval
    services: list[ServiceSnapshot] = field(default_factory=list)
    edges: list[EdgeSnapshot] = field(default_factory=list)
    recent: list[RequestRecord] = field(default_factory=list)  # new since the previous snapshot, capped
    statuses: dict[str, int] = field(default_factory=dict)  # the load generator's answers by status, this interval
    actual_success: float | None = None  # what the called services' replicas returned, together; None when idle
    in_flight: int = 0  # the load generator's requests still waiting for an answer
    totals: dict[str, int] = field(default_factory=dict)  # since the start: retries, ejections, tls_failures, uo,
    # and open_circuits right now
    control_plane_alive: bool = True  # sidecars keep serving their last config while it is down

    def one_second(self) -> dict[str, Any]:
        """This second in its one shape: a sparkline point on the page, a row of the stored history and
        of the result's `per_second`. Its first seven keys are what every stored history has always had."""
        actual = [edge.actual_success for edge in self.edges if edge.actual_success is not None]
        entry = next((edge for edge in self.edges if edge.source == "loadgen"), None)  # the load generator's edge
        return {
            "t": round(self.t, 1),
            "rps": round(entry.rps if entry else float(self.requests), 1),
            "effective": self.effective_success,  # at the entry, as the load generator saw it
            "actual": min(actual) if actual else None,  # the worst edge's replicas
            "p50": round(self.p50_ms, 2),
            "p95": round(self.p95_ms, 2),
            "p99": round(self.p99_ms, 2),
            "requests": self.requests,
            "statuses": dict(self.statuses),
            "actual_together": self.actual_success,  # every called replica's answers together
            "in_flight": self.in_flight,
            **{k: self.totals.get(k, 0) for k in ("retries", "ejections", "tls_failures", "open_circuits")},
        }


@dataclass
class CommandApplied(Event):
    kind: ClassVar[str] = "applied"
    command: dict = field(default_factory=dict)  # the command as JSON (its `action` and fields)
    said: str = ""  # what was done, in plain words
    id: str = ""  # the caller's id for the command, echoed back


@dataclass
class CommandRefused(Event):
    kind: ClassVar[str] = "refused"
    command: dict = field(default_factory=dict)
    reason: str = ""  # "services[b].retry.attempts: must be a whole number from 0 to 10, got -1"
    id: str = ""


@dataclass
class ProcessExited(Event):
    kind: ClassVar[str] = "exited"
    process: str = ""  # sidecar | service | control_plane
    service: str = ""
    replica: int = 0
    code: int | None = None
    expected: bool = False  # killed on purpose by a command
    pid: int | None = None  # None in the in-process runtime


@dataclass
class ConfigNacked(Event):
    kind: ClassVar[str] = "nack"
    service: str = ""
    replica: int = 0
    version: int = 0
    serving_version: int = 0
    reason: str = ""


@dataclass
class Finding(Event):
    kind: ClassVar[str] = "finding"
    code: str = ""  # MESH001 ...
    severity: str = ""  # error | warning | info
    subject: str = ""
    message: str = ""


@dataclass
class Finished(Event):
    kind: ClassVar[str] = "finished"
    reason: str = ""  # completed | stopped | idle | deadline | failed: <why>
    result: dict = field(default_factory=dict)  # the same JSON the command line's --json writes


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (Started, Snapshot, CommandApplied, CommandRefused, ProcessExited, ConfigNacked, Finding, Finished)
}
_NESTED = {"services": ServiceSnapshot, "edges": EdgeSnapshot, "recent": RequestRecord}


def event_from_json(text: str | bytes) -> Event:
    """The inverse of `Event.to_json`; raises ValueError on anything else."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("kind") not in EVENT_TYPES:
        raise ValueError(f"not a mesh event: {str(text)[:80]!r}")
    cls = EVENT_TYPES[data.pop("kind")]
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {k: v for k, v in data.items() if k in names}
    if cls is Snapshot:
        for key, nested in _NESTED.items():
            values[key] = [_nested(nested, item) for item in values.get(key, [])]
    return cls(**values)


def _nested(cls: type, item: dict) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in item.items() if k in names}
    if cls is RequestRecord:
        values["attempts"] = [Attempt(**a) for a in values.get("attempts", [])]
    return cls(**values)
