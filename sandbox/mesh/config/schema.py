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
    RetryPolicy,
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


def _traffic_sections() -> dict[str, list[Field]]:
    """The traffic fields by the TrafficPolicy attribute they live in ("" for the policy's own), in
    declaration order."""
    sections: dict[str, list[Field]] = {}
    for f in TRAFFIC_FIELDS:
        sections.setdefault(f.place[0], []).append(f)
    return sections


_SECTIONS = _traffic_sections()


def _fill_backoff_cap(v: dict[str, Any], path: str) -> None:
    """An unset cap follows a base set above it, so `backoff_base: 500ms` alone is valid; a cap set below
    the base is refused."""
    if "retry.attempts" not in v:
        return
    defaults = RetryPolicy()
    base = v.get("retry.backoff_base", defaults.backoff_base)
    cap = v.setdefault("retry.backoff_max", max(defaults.backoff_max, base))
    if cap < base:
        raise SchemaError(
            f"{path}.retry.backoff_max",
            f"must not be below backoff_base ({format_duration(base)}), got {format_duration(cap)}",
        )


def parse_traffic(data: Any, path: str = "traffic") -> TrafficPolicy:
    """A traffic policy document (YAML or pushed JSON, the same spelling) to a TrafficPolicy.

    A section the document leaves out keeps its type's defaults (its layer off); a field a written section
    leaves out takes its type's default too, so the model's dataclasses are the one place defaults live."""
    v: dict[str, Any] = {}
    _parse_group(TRAFFIC_FIELDS, data, "", path, v)
    _fill_backoff_cap(v, path)
    given: dict[str, Any] = {}
    for section, fields in _SECTIONS.items():
        values = {f.place[1]: v[f.key] for f in fields if f.key in v}
        if not section:
            given.update(values)
        elif values:
            given[section] = type(getattr(TrafficPolicy(), section))(**values)
    return TrafficPolicy(**given)


def _dump_order(fields: list[Field]) -> list[Field]:
    # A section's fields that are always written come first, then those written only when set (a
    # per-try timeout, a breaker's limits), so the document reads as it always has.
    return sorted(fields, key=lambda f: f.default is None and not f.required)


def dump_traffic(policy: TrafficPolicy) -> dict[str, Any]:
    """A TrafficPolicy in the document spelling (durations in seconds): parse_traffic(dump_traffic(p)) == p.

    A section at its defaults is left out; a written section carries every field that is set."""
    out: dict[str, Any] = {}
    for section, fields in _SECTIONS.items():
        value = getattr(policy, section) if section else policy
        if section and value == type(value)():
            continue
        for f in _dump_order(fields):
            item = getattr(value, f.place[1])
            if item is None:
                continue
            if isinstance(item, frozenset):
                item = [c for c in f.choices if c in item]
            *parents, name = f.key.split(".")
            target = out
            for parent in parents:
                target = target.setdefault(parent, {})
            target[name] = item
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
