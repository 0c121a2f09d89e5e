"""The configuration the control plane pushes to a sidecar, as JSON, and its strict decoding.

A sidecar decodes and validates the whole pushed document before applying any of it, so a bad
policy is refused (NACK with the reason) and the previous version keeps serving.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sandbox.mesh.layers.retry import RETRY_CONDITIONS
from sandbox.mesh.model import (
    AuthorizationPolicy,
    AuthorizationRule,
    CircuitBreakerPolicy,
    Endpoint,
    FaultPolicy,
    OutlierDetectionPolicy,
    RetryPolicy,
    TimeoutPolicy,
    TrafficPolicy,
)

MTLS_MODES = ("STRICT", "PERMISSIVE", "DISABLE")


class ConfigError(ValueError):
    """A pushed value the sidecar cannot apply; the message names the field path."""


def to_jsonable(value: Any) -> Any:
    """Dataclasses (policies, endpoints) to plain JSON types; frozensets become sorted lists."""
    if dataclasses.is_dataclass(value):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (frozenset, set)):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def _number(data: dict, key: str, path: str, *, low: float, high: float | None = None, whole: bool = False,
            optional: bool = False, default: Any = None) -> Any:
    if key not in data:
        return default
    value = data[key]
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not float(value).is_integer()):
        raise ConfigError(f"{path}.{key}: must be a {'whole ' if whole else ''}number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{path}.{key}: must be {bound}, got {value!r}")
    return int(value) if whole else float(value)


def _check_keys(data: Any, allowed: set[str], path: str) -> dict:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping, got {type(data).__name__}")
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    return data


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def traffic_from_dict(data: Any, path: str = "traffic") -> TrafficPolicy:
    data = _check_keys(data or {}, _fields(TrafficPolicy), path)
    lb = data.get("load_balancer", "round_robin")
    if lb not in ("round_robin", "least_request"):
        raise ConfigError(f"{path}.load_balancer: must be round_robin or least_request, got {lb!r}")
    t = _check_keys(data.get("timeout") or {}, _fields(TimeoutPolicy), f"{path}.timeout")
    r = _check_keys(data.get("retry") or {}, _fields(RetryPolicy), f"{path}.retry")
    retry_on = r.get("retry_on", sorted(RetryPolicy().retry_on))
    if not isinstance(retry_on, (list, tuple)) or not set(retry_on) <= RETRY_CONDITIONS:
        raise ConfigError(f"{path}.retry.retry_on: must list conditions from {sorted(RETRY_CONDITIONS)}, got {retry_on!r}")
    defaults = RetryPolicy()
    retry = RetryPolicy(
        attempts=_number(r, "attempts", f"{path}.retry", low=0, high=10, whole=True, default=0),
        per_try_timeout=_number(r, "per_try_timeout", f"{path}.retry", low=0.001, optional=True),
        retry_on=frozenset(retry_on),
        backoff_base=_number(r, "backoff_base", f"{path}.retry", low=0.001, high=10, default=defaults.backoff_base),
        backoff_max=_number(r, "backoff_max", f"{path}.retry", low=0.001, high=60, default=defaults.backoff_max),
        budget_ratio=_number(r, "budget_ratio", f"{path}.retry", low=0, high=10, default=defaults.budget_ratio),
        budget_min_per_second=_number(r, "budget_min_per_second", f"{path}.retry", low=0, high=100000,
                                      default=defaults.budget_min_per_second),
    )
    c = _check_keys(data.get("circuit_breaker") or {}, _fields(CircuitBreakerPolicy), f"{path}.circuit_breaker")
    o = _check_keys(data.get("outlier_detection") or {}, _fields(OutlierDetectionPolicy), f"{path}.outlier_detection")
    f = _check_keys(data.get("fault") or {}, _fields(FaultPolicy), f"{path}.fault")
    od = OutlierDetectionPolicy()
    return TrafficPolicy(
        load_balancer=lb,
        timeout=TimeoutPolicy(request_timeout=_number(t, "request_timeout", f"{path}.timeout", low=0.001, optional=True)),
        retry=retry,
        circuit_breaker=CircuitBreakerPolicy(
            max_connections=_number(c, "max_connections", f"{path}.circuit_breaker", low=1, whole=True, optional=True),
            max_pending_requests=_number(c, "max_pending_requests", f"{path}.circuit_breaker", low=0, whole=True,
                                         optional=True),
        ),
        outlier_detection=OutlierDetectionPolicy(
            consecutive_5xx=_number(o, "consecutive_5xx", f"{path}.outlier_detection", low=1, whole=True, optional=True),
            base_ejection_time=_number(o, "base_ejection_time", f"{path}.outlier_detection", low=0.001,
                                       default=od.base_ejection_time),
            max_ejection_percent=_number(o, "max_ejection_percent", f"{path}.outlier_detection", low=0, high=100,
                                         whole=True, default=od.max_ejection_percent),
        ),
        fault=FaultPolicy(
            abort_percent=_number(f, "abort_percent", f"{path}.fault", low=0, high=100, default=0.0),
            abort_status=_number(f, "abort_status", f"{path}.fault", low=100, high=599, whole=True, default=503),
            delay_percent=_number(f, "delay_percent", f"{path}.fault", low=0, high=100, default=0.0),
            delay_seconds=_number(f, "delay_seconds", f"{path}.fault", low=0, high=600, default=0.0),
        ),
    )


def _strings(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: must be a list of strings, got {value!r}")
    return tuple(value)


def authorization_from_dict(data: Any, path: str = "authorization") -> AuthorizationPolicy | None:
    if data is None:
        return None
    data = _check_keys(data, {"allow", "deny"}, path)
    rules = {}
    for kind in ("allow", "deny"):
        items = data.get(kind) or []
        if not isinstance(items, list):
            raise ConfigError(f"{path}.{kind}: must be a list of rules")
        parsed = []
        for i, rule in enumerate(items):
            rp = f"{path}.{kind}[{i}]"
            rule = _check_keys(rule, {"sources", "methods", "paths"}, rp)
            parsed.append(AuthorizationRule(
                sources=_strings(rule.get("sources", []), f"{rp}.sources"),
                methods=_strings(rule.get("methods", []), f"{rp}.methods"),
                paths=_strings(rule.get("paths", []), f"{rp}.paths"),
            ))
        rules[kind] = tuple(parsed)
    return AuthorizationPolicy(allow=rules["allow"], deny=rules["deny"])


def endpoint_from_dict(data: Any, path: str) -> Endpoint:
    data = _check_keys(data, _fields(Endpoint), path)
    try:
        return Endpoint(service=str(data["service"]), host=str(data["host"]), port=int(data["port"]),
                        spiffe_id=str(data.get("spiffe_id", "")), replica=int(data.get("replica", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: bad endpoint ({exc})") from exc


@dataclasses.dataclass
class Destination:
    name: str
    traffic: TrafficPolicy
    endpoints: list[Endpoint]
    sidecar: bool  # whether its replicas have a sidecar (then we originate mTLS to them)


@dataclasses.dataclass
class SidecarConfig:
    """One decoded, validated push."""

    version: int
    service: str
    mtls_mode: str
    outbound_tls: bool  # False = this workload was switched to plaintext (a learner action)
    authorization: AuthorizationPolicy | None
    destinations: dict[str, Destination]
    certificate: dict  # cert_pem, key_pem, spiffe_id, not_after (epoch seconds)
    root_pem: str


def sidecar_config_from_dict(doc: Any) -> SidecarConfig:
    doc = _check_keys(doc, {"version", "service", "mtls_mode", "outbound_tls", "authorization", "destinations",
                            "certificate", "root_pem"}, "config")
    if doc.get("mtls_mode") not in MTLS_MODES:
        raise ConfigError(f"config.mtls_mode: must be one of {', '.join(MTLS_MODES)}, got {doc.get('mtls_mode')!r}")
    destinations = {}
    for name, dest in (doc.get("destinations") or {}).items():
        p = f"config.destinations.{name}"
        dest = _check_keys(dest, {"traffic", "endpoints", "sidecar"}, p)
        destinations[name] = Destination(
            name=name,
            traffic=traffic_from_dict(dest.get("traffic"), f"{p}.traffic"),
            endpoints=[endpoint_from_dict(e, f"{p}.endpoints[{i}]") for i, e in enumerate(dest.get("endpoints") or [])],
            sidecar=bool(dest.get("sidecar", True)),
        )
    cert = doc.get("certificate")
    if not isinstance(cert, dict) or not {"cert_pem", "key_pem", "spiffe_id"} <= set(cert):
        raise ConfigError("config.certificate: must carry cert_pem, key_pem and spiffe_id")
    return SidecarConfig(
        version=int(doc["version"]),
        service=str(doc["service"]),
        mtls_mode=doc["mtls_mode"],
        outbound_tls=bool(doc.get("outbound_tls", True)),
        authorization=authorization_from_dict(doc.get("authorization"), "config.authorization"),
        destinations=destinations,
        certificate=cert,
        root_pem=str(doc["root_pem"]),
    )
