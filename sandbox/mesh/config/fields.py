"""The field table: every traffic, TLS, authorization rule and behaviour field, declared once with how it is
written, checked (through checks.py) and shown in a form. schema.py reads and writes documents from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sandbox.mesh.config.checks import (
    HTTP_METHODS,
    RETRY_CONDITIONS,
    _request_path,
    _retry_on,
    _source,
    expect_boolean,
    expect_choice,
    expect_duration,
    expect_list,
    expect_number,
    expect_whole,
)
from sandbox.mesh.config.model import (
    OutlierDetectionPolicy,
    RetryPolicy,
)

MTLS_MODES = ("STRICT", "PERMISSIVE", "DISABLE")
LOAD_BALANCERS = ("round_robin", "least_request")


# --------------------------------------------------------------------------- the declarations


@dataclass(frozen=True)
class Field:
    """One policy field: how it is written, checked and shown.

    `key` is its dotted place in the document (e.g. "retry.attempts"); `kind` is one of whole, number,
    duration (seconds), boolean, choice, conditions (retry_on), sources, methods, paths. `default` None
    means "not set" (the layer it configures is off). `required` is within its group (a retry block
    needs attempts). A web form renders it from `form()`. `attr` is its place in the typed TrafficPolicy
    ("section.attribute"), written only where it is not the key with the section's inner dots as underscores.
    """

    key: str
    kind: str
    label: str
    help: str = ""
    unit: str = ""
    low: float | None = None
    high: float | None = None
    default: Any = None
    choices: tuple[str, ...] = ()
    required: bool = False
    attr: str = ""

    @property
    def name(self) -> str:
        return self.key.rsplit(".", 1)[-1]

    @property
    def place(self) -> tuple[str, str]:
        """(section, attribute) in the typed policy; section "" for an attribute of the policy itself."""
        section, _, rest = (self.attr or self.key).partition(".")
        return (section, rest.replace(".", "_")) if rest else ("", section)

    def parse(self, value: Any, path: str) -> Any:
        """The checked value (durations in seconds, conditions a frozenset), or SchemaError naming `path`."""
        kind = self.kind
        if kind == "whole":
            return expect_whole(value, path, int(self.low), int(self.high))
        if kind == "number":
            return expect_number(value, path, self.low, self.high)
        if kind == "duration":
            return expect_duration(value, path, self.low, self.high)
        if kind == "boolean":
            return expect_boolean(value, path)
        if kind == "choice":
            return expect_choice(value, path, self.choices)
        if kind == "conditions":
            return _retry_on(value, path)
        item = {"sources": _source, "paths": _request_path, "methods": lambda v, p: expect_choice(v, p, HTTP_METHODS)}[
            kind
        ]
        return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(expect_list(value, path)))

    def form(self) -> dict[str, Any]:
        """What a browser form needs to render and check this field (same bounds as the parser)."""
        default = self.default
        if isinstance(default, frozenset):
            default = [c for c in self.choices if c in default]
        return {
            "key": self.key,
            "name": self.name,
            "kind": self.kind,
            "label": self.label,
            "help": self.help,
            "unit": self.unit,
            "min": self.low,
            "max": self.high,
            "default": default,
            "choices": list(self.choices),
            "required": self.required,
        }


TRAFFIC_FIELDS: tuple[Field, ...] = (
    Field(
        "load_balancer",
        "choice",
        "Load balancer",
        "how callers pick a replica",
        default="round_robin",
        choices=LOAD_BALANCERS,
    ),
    Field(
        "timeout",
        "duration",
        "Request timeout",
        "the whole call, retries included; then 504 UT",
        unit="s",
        low=0.001,
        high=300.0,
        attr="timeout.request_timeout",
    ),
    Field(
        "retry.attempts", "whole", "Retries", "retries after the first try", low=0, high=10, default=0, required=True
    ),
    Field(
        "retry.per_try_timeout",
        "duration",
        "Per-try timeout",
        "each try's own deadline",
        unit="s",
        low=0.001,
        high=300.0,
    ),
    Field(
        "retry.retry_on",
        "conditions",
        "Retry on",
        "which failures are retried",
        default=RetryPolicy().retry_on,
        choices=RETRY_CONDITIONS,
    ),
    Field(
        "retry.backoff_base",
        "duration",
        "Backoff base",
        "jittered exponential backoff starts here",
        unit="s",
        low=0.001,
        high=10.0,
        default=RetryPolicy().backoff_base,
    ),
    Field(
        "retry.backoff_max",
        "duration",
        "Backoff cap",
        "the longest backoff; not below the base",
        unit="s",
        low=0.001,
        high=60.0,
        default=RetryPolicy().backoff_max,
    ),
    Field(
        "retry.budget_ratio",
        "number",
        "Retry budget",
        "retries may add at most this fraction of requests",
        low=0.0,
        high=1.0,
        default=RetryPolicy().budget_ratio,
    ),
    Field(
        "retry.budget_min_per_second",
        "number",
        "Retry budget floor",
        "plus this many retries per second",
        unit="/s",
        low=0.0,
        high=10_000.0,
        default=RetryPolicy().budget_min_per_second,
    ),
    Field(
        "circuit_breaker.max_connections",
        "whole",
        "Max connections",
        "requests in flight to the service",
        low=1,
        high=100_000,
    ),
    Field(
        "circuit_breaker.max_pending_requests",
        "whole",
        "Max pending",
        "waiting beyond that; more get 503 UO",
        low=1,
        high=100_000,
    ),
    Field(
        "outlier_detection.consecutive_5xx",
        "whole",
        "Consecutive 5xx",
        "failures in a row that eject a replica",
        low=1,
        high=1000,
        required=True,
    ),
    Field(
        "outlier_detection.base_ejection_time",
        "duration",
        "Ejection time",
        "ejected this long, times the number of ejections",
        unit="s",
        low=0.001,
        high=3600.0,
        default=OutlierDetectionPolicy().base_ejection_time,
    ),
    Field(
        "outlier_detection.max_ejection_percent",
        "whole",
        "Max ejected",
        "share of replicas out at once",
        unit="%",
        low=0,
        high=100,
        default=OutlierDetectionPolicy().max_ejection_percent,
    ),
    Field(
        "fault.abort.percent",
        "number",
        "Abort percent",
        "share answered by the caller's sidecar (FI)",
        unit="%",
        low=0.0,
        high=100.0,
        default=0.0,
        required=True,
    ),
    Field("fault.abort.status", "whole", "Abort status", "the status those get", low=400, high=599, default=503),
    Field(
        "fault.delay.percent",
        "number",
        "Delay percent",
        "share held before being sent (DI)",
        unit="%",
        low=0.0,
        high=100.0,
        default=0.0,
        required=True,
    ),
    Field(
        "fault.delay.duration",
        "duration",
        "Delay",
        "how long they are held",
        unit="s",
        low=0.0,
        high=60.0,
        default=0.0,
        required=True,
        attr="fault.delay_seconds",
    ),
    Field(
        "rate_limit.requests_per_second",
        "number",
        "Rate limit",
        "requests per second the service's sidecars let in; more get 429 RL",
        unit="/s",
        low=0.001,
        high=100_000.0,
        required=True,
    ),
    Field(
        "rate_limit.burst",
        "whole",
        "Burst",
        "requests let in at once before the rate applies",
        low=1,
        high=100_000,
        default=1,
    ),
)

BEHAVIOUR_FIELDS: tuple[Field, ...] = (
    Field("latency", "duration", "Latency", "added before answering", unit="s", low=0.0, high=60.0, default=0.0),
    Field(
        "error_rate",
        "number",
        "Error rate",
        "fraction of requests answered with error_status",
        low=0.0,
        high=1.0,
        default=0.0,
    ),
    Field("error_status", "whole", "Error status", "the status of those answers", low=400, high=599, default=503),
    Field("hang", "boolean", "Hang", "accept and never answer", default=False),
)

TLS_FIELDS: tuple[Field, ...] = (
    Field(
        "mtls",
        "choice",
        "mTLS mode",
        "what the service's inbound sidecar accepts",
        default="STRICT",
        choices=MTLS_MODES,
    ),
    Field(
        "outbound_tls",
        "boolean",
        "Outbound mTLS",
        "false: the workload's sidecar calls peers in plaintext",
        default=True,
    ),
)

AUTHORIZATION_RULE_FIELDS: tuple[Field, ...] = (
    Field("sources", "sources", "Sources", "service names or SPIFFE IDs; empty = anyone", default=()),
    Field("methods", "methods", "Methods", "empty = any method", default=(), choices=HTTP_METHODS),
    Field("paths", "paths", "Paths", "exact, or a prefix ending in '*'; empty = any path", default=()),
)

FIELDS: dict[str, Field] = {f.key: f for f in TRAFFIC_FIELDS}
BEHAVIOUR: dict[str, Field] = {f.key: f for f in BEHAVIOUR_FIELDS}
TLS: dict[str, Field] = {f.key: f for f in TLS_FIELDS}

# The runtime's behaviour patch (sidecar admin / supervisor) writes latency in milliseconds: same
# field, same bounds, another unit.
_LATENCY_MS = dataclasses.replace(
    BEHAVIOUR["latency"],
    key="latency_ms",
    kind="number",
    unit="ms",
    low=BEHAVIOUR["latency"].low * 1000,
    high=BEHAVIOUR["latency"].high * 1000,
)
