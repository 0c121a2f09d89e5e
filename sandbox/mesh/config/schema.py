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
    rate_limit: {requests_per_second: 10, burst: 5}   # enforced by the service's own inbound sidecars

A refusal is a `SchemaError` whose message is `<field path>: <reason>`, e.g.
`services[1].traffic.retry.attempts: must be a whole number from 0 to 10, got -1`, bounded in length.
"""

from __future__ import annotations

from typing import Any

from sandbox.mesh.config.checks import (
    HTTP_METHODS,
    RETRY_CONDITIONS,
    SchemaError,
    _child,
    expect_boolean,
    expect_choice,
    expect_duration,
    expect_list,
    expect_mapping,
    expect_name,
    expect_number,
    expect_whole,
    format_duration,
    parse_duration,
    show,
)
from sandbox.mesh.config.fields import (
    _LATENCY_MS,
    AUTHORIZATION_RULE_FIELDS,
    BEHAVIOUR,
    BEHAVIOUR_FIELDS,
    FIELDS,
    LOAD_BALANCERS,
    MTLS_MODES,
    TLS,
    TLS_FIELDS,
    TRAFFIC_FIELDS,
    Field,
)
from sandbox.mesh.config.model import (
    AuthorizationPolicy,
    AuthorizationRule,
    Behaviour,
    CircuitBreakerPolicy,
    FaultPolicy,
    OutlierDetectionPolicy,
    RateLimitPolicy,
    RetryPolicy,
    TimeoutPolicy,
    TrafficPolicy,
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
        rate_limit=RateLimitPolicy(
            requests_per_second=v.get("rate_limit.requests_per_second"),
            burst=v.get("rate_limit.burst", RateLimitPolicy().burst),
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
    limit = policy.rate_limit
    if limit.requests_per_second is not None:
        out["rate_limit"] = {"requests_per_second": limit.requests_per_second, "burst": limit.burst}
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


# The checks are read from here too: the schema is the one place a caller looks for how a field is read.
__all__ = [
    "LOAD_BALANCERS",
    "TLS_FIELDS",
    "BEHAVIOUR_FIELDS",
    "AUTHORIZATION_RULE_FIELDS",
    "BEHAVIOUR",
    "FIELDS",
    "HTTP_METHODS",
    "MTLS_MODES",
    "RETRY_CONDITIONS",
    "TLS",
    "TRAFFIC_FIELDS",
    "Field",
    "SchemaError",
    "dump_authorization",
    "dump_traffic",
    "expect_boolean",
    "expect_choice",
    "expect_duration",
    "expect_list",
    "expect_mapping",
    "expect_name",
    "expect_number",
    "expect_whole",
    "format_duration",
    "parse_authorization",
    "parse_behaviour",
    "parse_behaviour_patch",
    "parse_duration",
    "parse_traffic",
    "show",
]
