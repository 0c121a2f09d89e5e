"""Load a mesh topology from YAML into model.Topology, refusing a bad file with the field and reason.

Schema (every key optional unless marked *required*; unknown keys are refused everywhere).
Durations are written "250ms", "2s", "1.5s", "1m" or as a plain number of seconds.
Percentages are numbers from 0 to 100; rates are fractions from 0 to 1.

    name: shop                      # *required*, lower-case letters, digits, '-'
    entry: cart                     # *required*, the service the load generator calls
    trust_domain: meshlearn.local   # SPIFFE trust domain of every certificate
    namespace: default              # the <ns> in spiffe://<trust-domain>/ns/<ns>/sa/<service>
    services:                       # *required*, 1 to 16 services, at most 24 replicas in all
      - name: cart                  # *required*, unique, a DNS label (a-z, 0-9, '-')
        replicas: 1                 # 1 to 10
        calls: [payments]           # services it calls for every request it serves
        sidecar: true               # false = a workload outside the mesh (plain HTTP only)
        mtls: STRICT                # STRICT | PERMISSIVE | DISABLE; default STRICT, or
                                    # DISABLE when sidecar is false
        behaviour:                  # how the demo workload answers (changeable at run time)
          latency: 5ms              # 0s to 60s
          error_rate: 0.0           # fraction of requests answered with error_status
          error_status: 503         # 400 to 599
          hang: false               # accept and never answer
        traffic:                    # applied by the *callers'* sidecars to calls to this service
          load_balancer: round_robin        # round_robin | least_request
          timeout: 2s                       # whole call, retries included (1ms to 300s)
          retry:
            attempts: 3                     # *required*, retries after the first try, 0 to 10
            per_try_timeout: 250ms          # 1ms to 300s
            retry_on: [5xx, connect-failure, reset]   # or "5xx,reset"; also gateway-error,
                                            # retriable-4xx (409)
            backoff_base: 25ms              # first backoff (jittered, exponential)
            backoff_max: 250ms              # cap, not below backoff_base
            budget_ratio: 0.2               # retries may add this fraction of requests ...
            budget_min_per_second: 10       # ... plus this many per second
          circuit_breaker:
            max_connections: 100            # 1 to 100000
            max_pending_requests: 10        # 1 to 100000
          outlier_detection:
            consecutive_5xx: 5              # *required*, 1 to 1000
            base_ejection_time: 30s         # 1ms to 3600s
            max_ejection_percent: 50        # 0 to 100 (whole number)
          fault:
            abort: {percent: 10, status: 503}         # percent *required*; status 400-599
            delay: {percent: 5, duration: 100ms}      # both *required*; duration 0s to 60s
        authorization:              # applied by this service's inbound sidecar
          deny:                     # checked first; a match gets 403
            - sources: [frontend]   # service names or SPIFFE IDs; empty/absent = anyone
              methods: [DELETE]     # GET POST PUT PATCH DELETE HEAD OPTIONS; absent = any
              paths: ["/admin/*"]   # exact, or a prefix ending in "*"; absent = any
          allow:                    # if given, only matching requests pass
            - sources: [cart]

Errors name the path of the offending field, e.g.
``services[1].traffic.retry.attempts: must be a whole number from 0 to 10, got -1``.
Calls to services that do not exist are *not* refused here: they are a finding of
analyze.py (MESH002), because a learner may want to see what such a route does (NR).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from sandbox.mesh.ca import SpiffeIdError, parse_spiffe_id, validate_trust_domain
from sandbox.mesh.layers.retry import RETRY_CONDITIONS_IN_ORDER as RETRY_CONDITIONS
from sandbox.mesh.model import (
    AuthorizationPolicy,
    AuthorizationRule,
    Behaviour,
    CircuitBreakerPolicy,
    FaultPolicy,
    OutlierDetectionPolicy,
    RetryPolicy,
    Service,
    TimeoutPolicy,
    Topology,
    TrafficPolicy,
)

TOPOLOGIES_DIR = Path(__file__).resolve().parent / "topologies"

MAX_SERVICES = 16
MAX_REPLICAS_PER_SERVICE = 10
# Every replica is a process pair (service + sidecar) on a 2-core machine.
MAX_REPLICAS_TOTAL = 24
MTLS_MODES = ("STRICT", "PERMISSIVE", "DISABLE")
LOAD_BALANCERS = ("round_robin", "least_request")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}


class TopologyError(ValueError):
    """A topology that cannot be used; `path` names the field (e.g. services[1].replicas)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# --------------------------------------------------------------------------- entry points


def shipped_topology_path(name: str) -> Path:
    """Path of a topology shipped with the engine ("pair", "shop")."""
    path = TOPOLOGIES_DIR / f"{name}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in TOPOLOGIES_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"no shipped topology {name!r}; available: {available}")
    return path


def load_topology(path_or_text: str | os.PathLike[str]) -> Topology:
    """Parse a topology from a file path (a Path, or a str ending in .yaml/.yml) or YAML text."""
    if isinstance(path_or_text, os.PathLike) or (
        isinstance(path_or_text, str)
        and "\n" not in path_or_text
        and path_or_text.endswith((".yaml", ".yml"))
    ):
        text = Path(path_or_text).read_text(encoding="utf-8")
    else:
        text = path_or_text
    return parse_topology(_load_yaml(text))


def parse_topology(data: Any) -> Topology:
    """Validate already-decoded data (YAML or JSON) and build the Topology."""
    doc = _mapping(data, "(top level)", required=("name", "entry", "services"),
                   optional=("trust_domain", "namespace"))
    name = _dns_label(doc["name"], "name")
    trust_domain = doc.get("trust_domain", "meshlearn.local")
    if not isinstance(trust_domain, str):
        raise TopologyError("trust_domain", f"must be a string, got {_show(trust_domain)}")
    try:
        validate_trust_domain(trust_domain)
    except SpiffeIdError as exc:
        raise TopologyError("trust_domain", str(exc)) from None
    namespace = _dns_label(doc.get("namespace", "default"), "namespace")

    raw_services = _list(doc["services"], "services")
    if not 1 <= len(raw_services) <= MAX_SERVICES:
        raise TopologyError("services", f"must list 1 to {MAX_SERVICES} services, got {len(raw_services)}")
    services = tuple(_service(raw, f"services[{index}]") for index, raw in enumerate(raw_services))

    first_index: dict[str, int] = {}
    for index, service in enumerate(services):
        if service.name in first_index:
            raise TopologyError(
                f"services[{index}].name",
                f"duplicate service name {service.name!r} (also services[{first_index[service.name]}])",
            )
        first_index[service.name] = index
    total = sum(service.replicas for service in services)
    if total > MAX_REPLICAS_TOTAL:
        raise TopologyError(
            "services", f"at most {MAX_REPLICAS_TOTAL} replicas in all (each is a process pair), got {total}"
        )

    entry = _dns_label(doc["entry"], "entry")
    if entry not in first_index:
        raise TopologyError("entry", f"no service named {entry!r}; services are {', '.join(first_index)}")
    return Topology(name=name, services=services, entry=entry, trust_domain=trust_domain, namespace=namespace)


# --------------------------------------------------------------------------- YAML


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise TopologyError(
                f"line {mark.line + 1}, column {mark.column + 1}",
                f"duplicate key {key!r} (first given on line {seen[key].start_mark.line + 1})",
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _load_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
        raise TopologyError(where, f"not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise TopologyError("(yaml)", f"not valid YAML: {exc}") from None


# --------------------------------------------------------------------------- one service


def _service(raw: Any, path: str) -> Service:
    doc = _mapping(raw, path, required=("name",), optional=(
        "replicas", "calls", "sidecar", "mtls", "behaviour", "traffic", "authorization"))
    name = _dns_label(doc["name"], f"{path}.name")
    replicas = _whole(doc.get("replicas", 1), f"{path}.replicas", 1, MAX_REPLICAS_PER_SERVICE)
    calls: list[str] = []
    for index, callee in enumerate(_list(doc.get("calls", []), f"{path}.calls")):
        callee_name = _dns_label(callee, f"{path}.calls[{index}]")
        if callee_name in calls:
            raise TopologyError(f"{path}.calls[{index}]", f"{callee_name!r} is listed twice")
        calls.append(callee_name)
    sidecar = _boolean(doc.get("sidecar", True), f"{path}.sidecar")
    # Without a sidecar nothing terminates mTLS, so its natural default is DISABLE.
    mtls = _choice(doc.get("mtls", "STRICT" if sidecar else "DISABLE"), f"{path}.mtls", MTLS_MODES)
    behaviour = _behaviour(doc["behaviour"], f"{path}.behaviour") if "behaviour" in doc else Behaviour()
    traffic = _traffic(doc["traffic"], f"{path}.traffic") if "traffic" in doc else TrafficPolicy()
    authorization = (
        _authorization(doc["authorization"], f"{path}.authorization") if "authorization" in doc else None
    )
    return Service(
        name=name, replicas=replicas, behaviour=behaviour, calls=tuple(calls), sidecar=sidecar,
        mtls_mode=mtls, traffic=traffic, authorization=authorization,  # type: ignore[arg-type]
    )


def _behaviour(raw: Any, path: str) -> Behaviour:
    doc = _mapping(raw, path, optional=("latency", "error_rate", "error_status", "hang"))
    return Behaviour(
        latency_ms=_duration(doc.get("latency", 0), f"{path}.latency", 0.0, 60.0) * 1000.0,
        error_rate=_number(doc.get("error_rate", 0.0), f"{path}.error_rate", 0.0, 1.0),
        error_status=_whole(doc.get("error_status", 503), f"{path}.error_status", 400, 599),
        hang=_boolean(doc.get("hang", False), f"{path}.hang"),
    )


def _traffic(raw: Any, path: str) -> TrafficPolicy:
    doc = _mapping(raw, path, optional=(
        "load_balancer", "timeout", "retry", "circuit_breaker", "outlier_detection", "fault"))
    timeout = TimeoutPolicy()
    if "timeout" in doc:
        timeout = TimeoutPolicy(request_timeout=_duration(doc["timeout"], f"{path}.timeout", 0.001, 300.0))
    return TrafficPolicy(
        load_balancer=_choice(doc.get("load_balancer", "round_robin"), f"{path}.load_balancer",
                              LOAD_BALANCERS),  # type: ignore[arg-type]
        timeout=timeout,
        retry=_retry(doc["retry"], f"{path}.retry") if "retry" in doc else RetryPolicy(),
        circuit_breaker=(
            _circuit_breaker(doc["circuit_breaker"], f"{path}.circuit_breaker")
            if "circuit_breaker" in doc else CircuitBreakerPolicy()
        ),
        outlier_detection=(
            _outlier_detection(doc["outlier_detection"], f"{path}.outlier_detection")
            if "outlier_detection" in doc else OutlierDetectionPolicy()
        ),
        fault=_fault(doc["fault"], f"{path}.fault") if "fault" in doc else FaultPolicy(),
    )


def _retry(raw: Any, path: str) -> RetryPolicy:
    doc = _mapping(raw, path, required=("attempts",), optional=(
        "per_try_timeout", "retry_on", "backoff_base", "backoff_max", "budget_ratio",
        "budget_min_per_second"))
    defaults = RetryPolicy()
    per_try = doc.get("per_try_timeout")
    backoff_base = _duration(doc.get("backoff_base", defaults.backoff_base), f"{path}.backoff_base", 0.001, 60.0)
    backoff_max = _duration(doc.get("backoff_max", max(defaults.backoff_max, backoff_base)),
                            f"{path}.backoff_max", 0.001, 60.0)
    if backoff_max < backoff_base:
        raise TopologyError(f"{path}.backoff_max",
                            f"must not be below backoff_base ({_seconds(backoff_base)}), got {_seconds(backoff_max)}")
    return RetryPolicy(
        attempts=_whole(doc["attempts"], f"{path}.attempts", 0, 10),
        per_try_timeout=None if per_try is None else _duration(per_try, f"{path}.per_try_timeout", 0.001, 300.0),
        retry_on=_retry_on(doc.get("retry_on", sorted(defaults.retry_on)), f"{path}.retry_on"),
        backoff_base=backoff_base,
        backoff_max=backoff_max,
        budget_ratio=_number(doc.get("budget_ratio", defaults.budget_ratio), f"{path}.budget_ratio", 0.0, 1.0),
        budget_min_per_second=_number(doc.get("budget_min_per_second", defaults.budget_min_per_second),
                                      f"{path}.budget_min_per_second", 0.0, 10000.0),
    )


def _retry_on(raw: Any, path: str) -> frozenset[str]:
    # Istio writes retryOn as one comma-separated string; a YAML list reads better. Take both.
    items = [part.strip() for part in raw.split(",")] if isinstance(raw, str) else _list(raw, path)
    if not items:
        raise TopologyError(path, f"must name at least one of {', '.join(RETRY_CONDITIONS)}")
    for index, item in enumerate(items):
        _choice(item, f"{path}[{index}]" if not isinstance(raw, str) else path, RETRY_CONDITIONS)
    return frozenset(items)


def _circuit_breaker(raw: Any, path: str) -> CircuitBreakerPolicy:
    doc = _mapping(raw, path, optional=("max_connections", "max_pending_requests"))
    if not doc:
        raise TopologyError(path, "give max_connections and/or max_pending_requests")
    limits = {key: _whole(doc[key], f"{path}.{key}", 1, 100_000) for key in doc}
    return CircuitBreakerPolicy(**limits)


def _outlier_detection(raw: Any, path: str) -> OutlierDetectionPolicy:
    doc = _mapping(raw, path, required=("consecutive_5xx",),
                   optional=("base_ejection_time", "max_ejection_percent"))
    defaults = OutlierDetectionPolicy()
    return OutlierDetectionPolicy(
        consecutive_5xx=_whole(doc["consecutive_5xx"], f"{path}.consecutive_5xx", 1, 1000),
        base_ejection_time=_duration(doc.get("base_ejection_time", defaults.base_ejection_time),
                                     f"{path}.base_ejection_time", 0.001, 3600.0),
        max_ejection_percent=_whole(doc.get("max_ejection_percent", defaults.max_ejection_percent),
                                    f"{path}.max_ejection_percent", 0, 100),
    )


def _fault(raw: Any, path: str) -> FaultPolicy:
    doc = _mapping(raw, path, optional=("abort", "delay"))
    if not doc:
        raise TopologyError(path, "give abort and/or delay")
    fault: dict[str, Any] = {}
    if "abort" in doc:
        abort = _mapping(doc["abort"], f"{path}.abort", required=("percent",), optional=("status",))
        fault["abort_percent"] = _number(abort["percent"], f"{path}.abort.percent", 0.0, 100.0)
        fault["abort_status"] = _whole(abort.get("status", 503), f"{path}.abort.status", 400, 599)
    if "delay" in doc:
        delay = _mapping(doc["delay"], f"{path}.delay", required=("percent", "duration"))
        fault["delay_percent"] = _number(delay["percent"], f"{path}.delay.percent", 0.0, 100.0)
        fault["delay_seconds"] = _duration(delay["duration"], f"{path}.delay.duration", 0.0, 60.0)
    return FaultPolicy(**fault)


def _authorization(raw: Any, path: str) -> AuthorizationPolicy:
    doc = _mapping(raw, path, optional=("allow", "deny"))
    if not doc:
        raise TopologyError(path, "give allow and/or deny rules (an empty policy would allow everything)")
    return AuthorizationPolicy(
        allow=tuple(_rule(rule, f"{path}.allow[{i}]") for i, rule in enumerate(_list(doc.get("allow", []), f"{path}.allow"))),
        deny=tuple(_rule(rule, f"{path}.deny[{i}]") for i, rule in enumerate(_list(doc.get("deny", []), f"{path}.deny"))),
    )


def _rule(raw: Any, path: str) -> AuthorizationRule:
    doc = _mapping(raw, path, optional=("sources", "methods", "paths"))
    sources = tuple(_source(item, f"{path}.sources[{i}]") for i, item in enumerate(_list(doc.get("sources", []), f"{path}.sources")))
    methods = tuple(_choice(item, f"{path}.methods[{i}]", HTTP_METHODS) for i, item in enumerate(_list(doc.get("methods", []), f"{path}.methods")))
    paths = tuple(_request_path(item, f"{path}.paths[{i}]") for i, item in enumerate(_list(doc.get("paths", []), f"{path}.paths")))
    return AuthorizationRule(sources=sources, methods=methods, paths=paths)


def _source(raw: Any, path: str) -> str:
    if isinstance(raw, str) and raw.startswith("spiffe://"):
        try:
            parse_spiffe_id(raw)
        except SpiffeIdError as exc:
            raise TopologyError(path, str(exc)) from None
        return raw
    if not isinstance(raw, str) or not _DNS_LABEL.match(raw):
        raise TopologyError(path, f"must be a service name or a SPIFFE ID (spiffe://...), got {_show(raw)}")
    return raw


def _request_path(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or not raw.startswith("/") or any(c.isspace() for c in raw):
        raise TopologyError(path, f"must be a URL path starting with '/', got {_show(raw)}")
    if "*" in raw[:-1]:
        raise TopologyError(path, f"'*' is only allowed at the end (a prefix match), got {raw!r}")
    return raw


# --------------------------------------------------------------------------- scalar checks


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        # YAML 1.1 reads yes/no/on/off as booleans: say so, it is a common surprise.
        return f"{value} (a YAML boolean; quote it if you meant text)"
    if isinstance(value, (dict, list)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return repr(value)


def _seconds(value: float) -> str:
    return f"{value * 1000:g}ms" if value < 1 else f"{value:g}s"


def _mapping(value: Any, path: str, *, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, Mapping):
        raise TopologyError(path, f"must be a mapping, got {_show(value)}")
    allowed = required + optional
    for key in value:
        if key not in allowed:
            key_path = f"{path}.{key}" if not path.startswith("(") else str(key)
            raise TopologyError(key_path, f"unknown key; expected one of {', '.join(allowed)}")
    for key in required:
        if key not in value:
            key_path = f"{path}.{key}" if not path.startswith("(") else key
            raise TopologyError(key_path, "required")
    return dict(value)


def _list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise TopologyError(path, f"must be a list, got {_show(value)}")
    return value


def _whole(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TopologyError(path, f"must be a whole number from {low} to {high}, got {_show(value)}")
    return value


def _number(value: Any, path: str, low: float, high: float) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or not low <= value <= high):
        raise TopologyError(path, f"must be a number from {low:g} to {high:g}, got {_show(value)}")
    return float(value)


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise TopologyError(path, f"must be true or false, got {_show(value)}")
    return value


def _choice(value: Any, path: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise TopologyError(path, f"must be one of {', '.join(choices)}, got {_show(value)}")
    return value


def _dns_label(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _DNS_LABEL.match(value):
        raise TopologyError(
            path, f"must be lower-case letters, digits and '-', starting with a letter, got {_show(value)}"
        )
    return value


def parse_duration(value: Any) -> float:
    """Seconds from "250ms", "2s", "1.5s", "1m" or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a duration")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError("a duration is a finite number of seconds, not negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError(f"not a duration: {value!r}")


def _duration(value: Any, path: str, low: float, high: float) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = math.nan
    if not low <= seconds <= high:
        raise TopologyError(
            path,
            f"must be a duration from {_seconds(low)} to {_seconds(high)} "
            f"(like 250ms, 2s or a number of seconds), got {_show(value)}",
        )
    return seconds


# --------------------------------------------------------------------------- back to data


def dump_topology(topology: Topology) -> dict[str, Any]:
    """The topology as plain data in this module's schema: parse_topology(dump_topology(t)) == t.
    Useful to send a topology over a wire as JSON."""
    return {
        "name": topology.name,
        "entry": topology.entry,
        "trust_domain": topology.trust_domain,
        "namespace": topology.namespace,
        "services": [_dump_service(service) for service in topology.services],
    }


def _dump_service(service: Service) -> dict[str, Any]:
    traffic = service.traffic
    out: dict[str, Any] = {
        "name": service.name,
        "replicas": service.replicas,
        "calls": list(service.calls),
        "sidecar": service.sidecar,
        "mtls": service.mtls_mode,
        "behaviour": {
            "latency": service.behaviour.latency_ms / 1000.0,
            "error_rate": service.behaviour.error_rate,
            "error_status": service.behaviour.error_status,
            "hang": service.behaviour.hang,
        },
    }
    dumped_traffic: dict[str, Any] = {"load_balancer": traffic.load_balancer}
    if traffic.timeout.request_timeout is not None:
        dumped_traffic["timeout"] = traffic.timeout.request_timeout
    if traffic.retry != RetryPolicy():
        retry = traffic.retry
        dumped_traffic["retry"] = {
            "attempts": retry.attempts, "retry_on": sorted(retry.retry_on),
            "backoff_base": retry.backoff_base, "backoff_max": retry.backoff_max,
            "budget_ratio": retry.budget_ratio, "budget_min_per_second": retry.budget_min_per_second,
        }
        if retry.per_try_timeout is not None:
            dumped_traffic["retry"]["per_try_timeout"] = retry.per_try_timeout
    breaker = traffic.circuit_breaker
    limits = {k: v for k, v in (("max_connections", breaker.max_connections),
                                ("max_pending_requests", breaker.max_pending_requests)) if v is not None}
    if limits:
        dumped_traffic["circuit_breaker"] = limits
    outlier = traffic.outlier_detection
    if outlier.consecutive_5xx is not None:
        dumped_traffic["outlier_detection"] = {
            "consecutive_5xx": outlier.consecutive_5xx,
            "base_ejection_time": outlier.base_ejection_time,
            "max_ejection_percent": outlier.max_ejection_percent,
        }
    if traffic.fault != FaultPolicy():
        fault = traffic.fault
        dumped_traffic["fault"] = {
            "abort": {"percent": fault.abort_percent, "status": fault.abort_status},
            "delay": {"percent": fault.delay_percent, "duration": fault.delay_seconds},
        }
    out["traffic"] = dumped_traffic
    if service.authorization is not None:
        dump_rule: Callable[[AuthorizationRule], dict] = lambda rule: {
            "sources": list(rule.sources), "methods": list(rule.methods), "paths": list(rule.paths)}
        out["authorization"] = {
            "allow": [dump_rule(rule) for rule in service.authorization.allow],
            "deny": [dump_rule(rule) for rule in service.authorization.deny],
        }
    return out
