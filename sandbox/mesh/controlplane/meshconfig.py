"""The configuration the control plane pushes to a sidecar, as JSON, and its strict decoding.

A sidecar decodes and validates the whole pushed document before applying any of it, so a bad
policy is refused (NACK with the reason) and the previous version keeps serving.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sandbox.mesh.config import schema
from sandbox.mesh.config.model import AuthorizationPolicy, Endpoint, TrafficPolicy
from sandbox.mesh.config.schema import MTLS_MODES, SchemaError

__all__ = [
    "MTLS_MODES",
    "Destination",
    "SidecarConfig",
    "authorization_from_dict",
    "endpoint_from_dict",
    "sidecar_config_from_dict",
    "to_jsonable",
]


def to_jsonable(value: Any) -> Any:
    """Dataclasses (policies, endpoints) to plain JSON types; frozensets become sorted lists.

    Traffic and authorization policies take the schema's document spelling, the one a topology file
    uses, so what the control plane pushes is exactly what the topology parser accepted."""
    if isinstance(value, TrafficPolicy):
        return schema.dump_traffic(value)
    if isinstance(value, AuthorizationPolicy):
        return schema.dump_authorization(value)
    if dataclasses.is_dataclass(value):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (frozenset, set)):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def _check_keys(data: Any, allowed: set[str], path: str) -> dict:
    return schema.expect_mapping(data, path, optional=sorted(allowed))


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def authorization_from_dict(data: Any, path: str = "authorization") -> AuthorizationPolicy | None:
    """A pushed authorization policy (None: no policy): schema.parse_authorization."""
    if data is None:
        return None
    return schema.parse_authorization(data, path)


def endpoint_from_dict(data: Any, path: str) -> Endpoint:
    data = _check_keys(data, _fields(Endpoint), path)
    try:
        return Endpoint(
            service=str(data["service"]),
            host=str(data["host"]),
            port=int(data["port"]),
            spiffe_id=str(data.get("spiffe_id", "")),
            replica=int(data.get("replica", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(path, f"bad endpoint ({exc})") from exc


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
    certificate: dict  # cert_pem, spiffe_id, not_after (epoch seconds); the key stays in the sidecar
    root_pem: str


def sidecar_config_from_dict(doc: Any) -> SidecarConfig:
    doc = _check_keys(
        doc,
        {"version", "service", "mtls_mode", "outbound_tls", "authorization", "destinations", "certificate", "root_pem"},
        "config",
    )
    mtls_mode = schema.TLS["mtls"].parse(doc.get("mtls_mode"), "config.mtls_mode")
    outbound_tls = schema.TLS["outbound_tls"].parse(doc.get("outbound_tls", True), "config.outbound_tls")
    destinations = {}
    raw_destinations = doc.get("destinations") or {}
    if not isinstance(raw_destinations, dict):
        raise SchemaError("config.destinations", f"must be a mapping, got {schema.show(raw_destinations)}")
    for name, dest in raw_destinations.items():
        p = f"config.destinations.{name}"
        dest = _check_keys(dest, {"traffic", "endpoints", "sidecar"}, p)
        destinations[name] = Destination(
            name=name,
            traffic=schema.parse_traffic(dest.get("traffic"), f"{p}.traffic"),
            endpoints=[endpoint_from_dict(e, f"{p}.endpoints[{i}]") for i, e in enumerate(dest.get("endpoints") or [])],
            sidecar=schema.expect_boolean(dest.get("sidecar", True), f"{p}.sidecar"),
        )
    cert = doc.get("certificate")
    if not isinstance(cert, dict) or not {"cert_pem", "spiffe_id"} <= set(cert):
        raise SchemaError("config.certificate", "must carry cert_pem and spiffe_id")
    return SidecarConfig(
        version=int(doc["version"]),
        service=str(doc["service"]),
        mtls_mode=mtls_mode,
        outbound_tls=outbound_tls,
        authorization=authorization_from_dict(doc.get("authorization"), "config.authorization"),
        destinations=destinations,
        certificate=cert,
        root_pem=str(doc["root_pem"]),
    )
