"""Every traffic, TLS, authorization and behaviour field of the mesh, declared once.

The topology YAML (`topology.py`), the JSON the control plane pushes to sidecars (`meshconfig.py`),
scenario `policy` steps, and the site's forms and lab steps are spellings of these declarations:
they all call `parse_traffic`, `parse_authorization`, `parse_behaviour` (or `parse_behaviour_patch`)
and `parse_duration` from here, so a value one of them accepts, every other one accepts too.

The document spelling of a traffic policy (YAML and pushed JSON alike):

    load_balancer: round_robin
    timeout: 2s
    retry: {attempts: 3, per_try_timeout: 250ms, retry_on: [5xx], backoff_base: 25ms, backoff_max: 250ms,
            budget_ratio: 0.2, budget_min_per_second: 10}
    circuit_breaker: {max_connections: 100, max_pending_requests: 10}
    outlier_detection: {consecutive_5xx: 5, base_ejection_time: 30s, max_ejection_percent: 10}
    fault: {abort: {percent: 10, status: 503}, delay: {percent: 5, duration: 100ms}}

A refusal is a `SchemaError` whose message is `<field path>: <reason>`, e.g.
`services[1].traffic.retry.attempts: must be a whole number from 0 to 10, got -1`, bounded in length.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.mesh.config.model import (
    RETRY_CONDITIONS_IN_ORDER,
    AuthorizationPolicy,
    AuthorizationRule,
    Behaviour,
    CircuitBreakerPolicy,
    FaultPolicy,
    OutlierDetectionPolicy,
    RetryPolicy,
    TimeoutPolicy,
    TrafficPolicy,
)
from sandbox.mesh.config.spiffe import SpiffeIdError, parse_spiffe_id

MTLS_MODES = ("STRICT", "PERMISSIVE", "DISABLE")
LOAD_BALANCERS = ("round_robin", "least_request")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
RETRY_CONDITIONS = RETRY_CONDITIONS_IN_ORDER

# Refusals are shown to learners and written to logs: keep them to one readable line.
MAX_PATH_CHARS = 200
MAX_REASON_CHARS = 400
MAX_SHOWN_VALUE_CHARS = 60

_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")  # used with fullmatch: "a\n" is not a name
_DURATION = re.compile(r"(\d{1,12}(?:\.\d{1,12})?)\s*(ms|s|m)?")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())  # one line: no newline from a value can split a message
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SchemaError(ValueError):
    """A value that cannot be used: `path` names the field (e.g. services[1].replicas), `reason` says why.

    Also takes one pre-formatted "path: reason" string, as older call sites raise it."""

    def __init__(self, path: str, reason: str | None = None) -> None:
        if reason is None:
            head, sep, tail = str(path).partition(": ")
            path, reason = (head, tail) if sep else ("(top level)", head)
        self.path = _clip(path, MAX_PATH_CHARS)
        self.reason = _clip(reason, MAX_REASON_CHARS)
        super().__init__(f"{self.path}: {self.reason}")


# --------------------------------------------------------------------------- showing values


def show(value: Any) -> str:
    """A value as a refusal quotes it: short, on one line, never raising (even for a 5,000-digit int)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        # YAML 1.1 reads yes/no/on/off as booleans: say so, it is a common surprise.
        return f"{value} (a YAML boolean; quote it if you meant text)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, int):
        if abs(value) >= 10**30:
            return "a number with more than 30 digits"
        return repr(value)
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value we cannot even print is named by its type
        text = f"a {type(value).__name__}"
    return _clip(text, MAX_SHOWN_VALUE_CHARS)


def format_duration(seconds: float) -> str:
    """250ms, 2s: how bounds and values are written back to a learner."""
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


# --------------------------------------------------------------------------- durations


def parse_duration(value: Any) -> float:
    """Seconds from "200ms", "2s", "1.5", "1.5s", "1m" or a plain number of seconds; ValueError otherwise.

    The one duration parser of the engine: topology, pushed config, scenario times and forms use it."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a duration")
    if isinstance(value, int):
        if value < 0 or value > 10**12:
            raise ValueError("a duration is a number of seconds from 0 up")
        return float(value)
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            raise ValueError("a duration is a finite number of seconds, not negative")
        return value
    if isinstance(value, str) and len(value) <= 40:
        match = _DURATION.fullmatch(value.strip())
        if match:
            return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError(f"not a duration: {show(value)}")


# --------------------------------------------------------------------------- scalar checks


def expect_mapping(value: Any, path: str, *, required: Iterable[str] = (), optional: Iterable[str] = ()) -> dict:
    """A mapping with only the given keys (unknown keys refused, required keys present)."""
    required, optional = tuple(required), tuple(optional)
    if not isinstance(value, Mapping):
        raise SchemaError(path, f"must be a mapping, got {show(value)}")
    allowed = required + optional
    for key in value:
        if not isinstance(key, str) or key not in allowed:
            raise SchemaError(_child(path, key), f"unknown key; expected one of {', '.join(allowed)}")
    for key in required:
        if key not in value:
            raise SchemaError(_child(path, key), "required")
    return dict(value)


def _child(path: str, key: Any) -> str:
    name = key if isinstance(key, str) else show(key)
    return str(name) if path.startswith("(") else f"{path}.{name}"


def expect_list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise SchemaError(path, f"must be a list, got {show(value)}")
    return value


def expect_whole(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SchemaError(path, f"must be a whole number from {low} to {high}, got {show(value)}")
    return value


def expect_number(value: Any, path: str, low: float, high: float) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if ok and isinstance(value, int):
        ok = low <= value <= high  # compared as ints: float() of a huge int would overflow
    elif ok:
        ok = math.isfinite(value) and low <= value <= high
    if not ok:
        raise SchemaError(path, f"must be a number from {low:g} to {high:g}, got {show(value)}")
    return float(value)


def expect_boolean(value: Any, path: str) -> bool:
    # Strict: the string "false" is not False (bool("false") is True).
    if not isinstance(value, bool):
        raise SchemaError(path, f"must be true or false, got {show(value)}")
    return value


def expect_choice(value: Any, path: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise SchemaError(path, f"must be one of {', '.join(choices)}, got {show(value)}")
    return value


def expect_name(value: Any, path: str) -> str:
    """A DNS label: topology, service and namespace names."""
    if not isinstance(value, str) or not _DNS_LABEL.fullmatch(value):
        raise SchemaError(
            path, f"must be lower-case letters, digits and '-', starting with a letter, got {show(value)}"
        )
    return value


def expect_duration(value: Any, path: str, low: float, high: float) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = math.nan
    if not low <= seconds <= high:
        raise SchemaError(
            path,
            f"must be a duration from {format_duration(low)} to {format_duration(high)} "
            f"(like 250ms, 2s or a number of seconds), got {show(value)}",
        )
    return seconds


def _retry_on(raw: Any, path: str) -> frozenset[str]:
    # Istio writes retryOn as one comma-separated string; a list reads better. Take both.
    if isinstance(raw, str):
        items, item_path = [part.strip() for part in raw.split(",")], lambda i: path
    else:
        items, item_path = expect_list(raw, path), lambda i: f"{path}[{i}]"
    if not items:
        raise SchemaError(path, f"must name at least one of {', '.join(RETRY_CONDITIONS)}")
    for index, item in enumerate(items):
        expect_choice(item, item_path(index), RETRY_CONDITIONS)
    return frozenset(items)


def _source(raw: Any, path: str) -> str:
    if isinstance(raw, str) and raw.startswith("spiffe://"):
        try:
            parse_spiffe_id(raw)
        except SpiffeIdError as exc:
            raise SchemaError(path, str(exc)) from None
        return raw
    if not isinstance(raw, str) or not _DNS_LABEL.fullmatch(raw):
        raise SchemaError(path, f"must be a service name or a SPIFFE ID (spiffe://...), got {show(raw)}")
    return raw


def _request_path(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or not raw.startswith("/") or any(c.isspace() for c in raw) or len(raw) > 1024:
        raise SchemaError(path, f"must be a URL path starting with '/', got {show(raw)}")
    if "*" in raw[:-1]:
        raise SchemaError(path, f"'*' is only allowed at the end (a prefix match), got {show(raw)}")
    return raw


# --------------------------------------------------------------------------- the declarations


@dataclass(frozen=True)
class Field:
    """One policy field: how it is written, checked and shown.

    `key` is its dotted place in the document (e.g. "retry.attempts"); `kind` is one of whole, number,
    duration (seconds), boolean, choice, conditions (retry_on), sources, methods, paths. `default` None
    means "not set" (the layer it configures is off). `required` is within its group (a retry block
    needs attempts). A web form renders it from `form()`.
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

    @property
    def name(self) -> str:
        return self.key.rsplit(".", 1)[-1]

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


# --------------------------------------------------------------------------- generic group parsing


def _children(fields: tuple[Field, ...], prefix: str) -> list[str]:
    names: list[str] = []
    for f in fields:
        if f.key.startswith(prefix):
            head = f.key[len(prefix) :].split(".", 1)[0]
            if head not in names:
                names.append(head)
    return names


def _parse_group(fields: tuple[Field, ...], raw: Any, prefix: str, path: str, out: dict[str, Any]) -> None:
    """Check one mapping of the document against the fields under `prefix`; store found values in `out`."""
    by_key = {f.key: f for f in fields}
    names = _children(fields, prefix)
    required = [n for n in names if prefix + n in by_key and by_key[prefix + n].required]
    doc = expect_mapping(raw, path, required=required, optional=[n for n in names if n not in required])
    if prefix and not doc and not required:
        # An empty block would silently configure nothing: say what it needs.
        raise SchemaError(path, f"give {' and/or '.join(names)}")
    for name in names:
        if name not in doc:
            continue
        key, child = prefix + name, _child(path, name)
        if key in by_key:
            out[key] = by_key[key].parse(doc[name], child)
        else:
            _parse_group(fields, doc[name], key + ".", child, out)


# --------------------------------------------------------------------------- traffic


def parse_traffic(data: Any, path: str = "traffic") -> TrafficPolicy:
    """A traffic policy document (YAML or pushed JSON, the same spelling) to a TrafficPolicy."""
    v: dict[str, Any] = {}
    _parse_group(TRAFFIC_FIELDS, data, "", path, v)
    defaults = RetryPolicy()
    retry = RetryPolicy()
    if "retry.attempts" in v:
        base = v.get("retry.backoff_base", defaults.backoff_base)
        # An unset cap follows a base set above it, so `backoff_base: 500ms` alone is valid.
        cap = v.get("retry.backoff_max", max(defaults.backoff_max, base))
        if cap < base:
            raise SchemaError(
                f"{path}.retry.backoff_max",
                f"must not be below backoff_base ({format_duration(base)}), got {format_duration(cap)}",
            )
        retry = RetryPolicy(
            attempts=v["retry.attempts"],
            per_try_timeout=v.get("retry.per_try_timeout"),
            retry_on=v.get("retry.retry_on", defaults.retry_on),
            backoff_base=base,
            backoff_max=cap,
            budget_ratio=v.get("retry.budget_ratio", defaults.budget_ratio),
            budget_min_per_second=v.get("retry.budget_min_per_second", defaults.budget_min_per_second),
        )
    outlier = OutlierDetectionPolicy()
    if "outlier_detection.consecutive_5xx" in v:
        outlier = OutlierDetectionPolicy(
            consecutive_5xx=v["outlier_detection.consecutive_5xx"],
            base_ejection_time=v.get("outlier_detection.base_ejection_time", outlier.base_ejection_time),
            max_ejection_percent=v.get("outlier_detection.max_ejection_percent", outlier.max_ejection_percent),
        )
    fault = FaultPolicy()
    return TrafficPolicy(
        load_balancer=v.get("load_balancer", "round_robin"),
        timeout=TimeoutPolicy(request_timeout=v.get("timeout")),
        retry=retry,
        circuit_breaker=CircuitBreakerPolicy(
            max_connections=v.get("circuit_breaker.max_connections"),
            max_pending_requests=v.get("circuit_breaker.max_pending_requests"),
        ),
        outlier_detection=outlier,
        fault=FaultPolicy(
            abort_percent=v.get("fault.abort.percent", fault.abort_percent),
            abort_status=v.get("fault.abort.status", fault.abort_status),
            delay_percent=v.get("fault.delay.percent", fault.delay_percent),
            delay_seconds=v.get("fault.delay.duration", fault.delay_seconds),
        ),
    )


def dump_traffic(policy: TrafficPolicy) -> dict[str, Any]:
    """A TrafficPolicy in the document spelling (durations in seconds): parse_traffic(dump_traffic(p)) == p."""
    out: dict[str, Any] = {"load_balancer": policy.load_balancer}
    if policy.timeout.request_timeout is not None:
        out["timeout"] = policy.timeout.request_timeout
    retry = policy.retry
    if retry != RetryPolicy():
        out["retry"] = {
            "attempts": retry.attempts,
            "retry_on": [c for c in RETRY_CONDITIONS if c in retry.retry_on],
            "backoff_base": retry.backoff_base,
            "backoff_max": retry.backoff_max,
            "budget_ratio": retry.budget_ratio,
            "budget_min_per_second": retry.budget_min_per_second,
        }
        if retry.per_try_timeout is not None:
            out["retry"]["per_try_timeout"] = retry.per_try_timeout
    breaker = policy.circuit_breaker
    limits = {
        k: v
        for k, v in (
            ("max_connections", breaker.max_connections),
            ("max_pending_requests", breaker.max_pending_requests),
        )
        if v is not None
    }
    if limits:
        out["circuit_breaker"] = limits
    outlier = policy.outlier_detection
    if outlier.consecutive_5xx is not None:
        out["outlier_detection"] = {
            "consecutive_5xx": outlier.consecutive_5xx,
            "base_ejection_time": outlier.base_ejection_time,
            "max_ejection_percent": outlier.max_ejection_percent,
        }
    fault = policy.fault
    if fault != FaultPolicy():
        out["fault"] = {
            "abort": {"percent": fault.abort_percent, "status": fault.abort_status},
            "delay": {"percent": fault.delay_percent, "duration": fault.delay_seconds},
        }
    return out


# --------------------------------------------------------------------------- behaviour


def parse_behaviour(data: Any, path: str = "behaviour") -> Behaviour:
    """A workload's behaviour as a topology writes it (latency as a duration)."""
    v: dict[str, Any] = {}
    _parse_group(BEHAVIOUR_FIELDS, data, "", path, v)
    default = Behaviour()
    return Behaviour(
        latency_ms=v.get("latency", default.latency_ms / 1000.0) * 1000.0,
        error_rate=v.get("error_rate", default.error_rate),
        error_status=v.get("error_status", default.error_status),
        hang=v.get("hang", default.hang),
    )


def parse_behaviour_patch(data: Any, path: str = "behaviour") -> dict[str, Any]:
    """The changes of a run-time behaviour update ({latency_ms, error_rate, error_status, hang}, any
    subset), checked with the same declarations as the topology's `behaviour`."""
    fields = {"latency_ms": _LATENCY_MS, **{k: BEHAVIOUR[k] for k in ("error_rate", "error_status", "hang")}}
    doc = expect_mapping(data, path, optional=tuple(fields))
    return {key: fields[key].parse(value, _child(path, key)) for key, value in doc.items()}


# --------------------------------------------------------------------------- authorization


def parse_authorization(data: Any, path: str = "authorization") -> AuthorizationPolicy:
    doc = expect_mapping(data, path, optional=("allow", "deny"))
    if not doc:
        raise SchemaError(path, "give allow and/or deny rules (an empty policy would allow everything)")
    rules: dict[str, tuple[AuthorizationRule, ...]] = {}
    for kind in ("allow", "deny"):
        items = expect_list(doc.get(kind, []), f"{path}.{kind}")
        rules[kind] = tuple(_rule(item, f"{path}.{kind}[{i}]") for i, item in enumerate(items))
    return AuthorizationPolicy(allow=rules["allow"], deny=rules["deny"])


def _rule(raw: Any, path: str) -> AuthorizationRule:
    v: dict[str, Any] = {}
    _parse_group(AUTHORIZATION_RULE_FIELDS, raw, "", path, v)
    return AuthorizationRule(sources=v.get("sources", ()), methods=v.get("methods", ()), paths=v.get("paths", ()))


def dump_authorization(policy: AuthorizationPolicy) -> dict[str, Any]:
    def rule(r: AuthorizationRule) -> dict[str, list[str]]:
        return {"sources": list(r.sources), "methods": list(r.methods), "paths": list(r.paths)}

    return {"allow": [rule(r) for r in policy.allow], "deny": [rule(r) for r in policy.deny]}


# --------------------------------------------------------------------------- forms


def form_fields(fields: tuple[Field, ...] = TRAFFIC_FIELDS) -> list[dict[str, Any]]:
    """Every field of a group as a form renders it: key, label, unit, min, max, default, help, choices."""
    return [f.form() for f in fields]
