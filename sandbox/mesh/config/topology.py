"""Load a mesh topology from YAML into model.Topology, refusing a bad file with the field and reason.

The policy parts (behaviour, traffic, authorization) are declared once in schema.py, which the
sidecars' decoder of pushed JSON uses too; this module adds the topology around them. Files are read
by files.py (.yaml/.yml only, at most 256 KiB, UTF-8, strict YAML with merge keys).

Schema (every key optional unless marked *required*; unknown keys are refused everywhere).
Durations are written "250ms", "2s", "1.5s", "1m" or as a number of seconds (1.5 or "1.5").
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
            backoff_base: 25ms              # first backoff (jittered, exponential), 1ms to 10s
            backoff_max: 250ms              # cap, 1ms to 60s, not below backoff_base
            budget_ratio: 0.2               # retries may add this fraction (0 to 1) of requests ...
            budget_min_per_second: 10       # ... plus this many per second (0 to 10000)
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
analyze.py (MESH002, an error). `python -m sandbox.mesh run` refuses a topology with error findings
(analyze.check_runnable); `analyze` lists them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sandbox.mesh.config import schema
from sandbox.mesh.config.files import is_file_reference, load_yaml, load_yaml_file
from sandbox.mesh.config.model import Behaviour, Service, Topology, TrafficPolicy
from sandbox.mesh.config.schema import (
    HTTP_METHODS,
    LOAD_BALANCERS,
    MTLS_MODES,
    SchemaError,
    expect_boolean,
    expect_list,
    expect_mapping,
    expect_name,
    expect_whole,
    parse_duration,
    show,
)
from sandbox.mesh.config.spiffe import SpiffeIdError, validate_trust_domain

__all__ = [
    "HTTP_METHODS",
    "LOAD_BALANCERS",
    "MTLS_MODES",
    "dump_topology",
    "load_topology",
    "parse_duration",
    "parse_topology",
    "shipped_topology_path",
]

TOPOLOGIES_DIR = Path(__file__).resolve().parents[1] / "topologies"

MAX_SERVICES = 16
MAX_REPLICAS_PER_SERVICE = 10
# Every replica is a process pair (service + sidecar) on a 2-core machine.
MAX_REPLICAS_TOTAL = 24


# --------------------------------------------------------------------------- entry points


def shipped_topology_path(name: str) -> Path:
    """Path of a topology shipped with the engine ("pair", "shop")."""
    path = TOPOLOGIES_DIR / f"{name}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in TOPOLOGIES_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"no shipped topology {name!r}; available: {available}")
    return path


def load_topology(path_or_text: str | os.PathLike[str]) -> Topology:
    """Parse a topology from a file (a Path, or a one-line str: it must end in .yaml/.yml) or from
    YAML text (a str with a newline in it). Files above files.MAX_FILE_BYTES are refused unread."""
    if is_file_reference(path_or_text):
        return parse_topology(load_yaml_file(path_or_text))
    return parse_topology(load_yaml(path_or_text))


def parse_topology(data: Any) -> Topology:
    """Validate already-decoded data (YAML or JSON) and build the Topology."""
    doc = expect_mapping(
        data, "(top level)", required=("name", "entry", "services"), optional=("trust_domain", "namespace")
    )
    name = expect_name(doc["name"], "name")
    trust_domain = doc.get("trust_domain", "meshlearn.local")
    if not isinstance(trust_domain, str):
        raise SchemaError("trust_domain", f"must be a string, got {show(trust_domain)}")
    try:
        validate_trust_domain(trust_domain)
    except SpiffeIdError as exc:
        raise SchemaError("trust_domain", str(exc)) from None
    namespace = expect_name(doc.get("namespace", "default"), "namespace")

    raw_services = expect_list(doc["services"], "services")
    if not 1 <= len(raw_services) <= MAX_SERVICES:
        raise SchemaError("services", f"must list 1 to {MAX_SERVICES} services, got {len(raw_services)}")
    services = tuple(_service(raw, f"services[{index}]") for index, raw in enumerate(raw_services))

    first_index: dict[str, int] = {}
    for index, service in enumerate(services):
        if service.name in first_index:
            raise SchemaError(
                f"services[{index}].name",
                f"duplicate service name {service.name!r} (also services[{first_index[service.name]}])",
            )
        first_index[service.name] = index
    total = sum(service.replicas for service in services)
    if total > MAX_REPLICAS_TOTAL:
        raise SchemaError(
            "services", f"at most {MAX_REPLICAS_TOTAL} replicas in all (each is a process pair), got {total}"
        )

    entry = expect_name(doc["entry"], "entry")
    if entry not in first_index:
        raise SchemaError("entry", f"no service named {entry!r}; services are {', '.join(first_index)}")
    return Topology(name=name, services=services, entry=entry, trust_domain=trust_domain, namespace=namespace)


# --------------------------------------------------------------------------- one service


def _service(raw: Any, path: str) -> Service:
    doc = expect_mapping(
        raw,
        path,
        required=("name",),
        optional=("replicas", "calls", "sidecar", "mtls", "behaviour", "traffic", "authorization"),
    )
    name = expect_name(doc["name"], f"{path}.name")
    replicas = expect_whole(doc.get("replicas", 1), f"{path}.replicas", 1, MAX_REPLICAS_PER_SERVICE)
    calls: list[str] = []
    listed: set[str] = set()  # a set, not `in calls`: a 40,000-entry list must not take minutes
    for index, callee in enumerate(expect_list(doc.get("calls", []), f"{path}.calls")):
        callee_name = expect_name(callee, f"{path}.calls[{index}]")
        if callee_name in listed:
            raise SchemaError(f"{path}.calls[{index}]", f"{callee_name!r} is listed twice")
        listed.add(callee_name)
        calls.append(callee_name)
    sidecar = expect_boolean(doc.get("sidecar", True), f"{path}.sidecar")
    # Without a sidecar nothing terminates mTLS, so its natural default is DISABLE.
    mtls = schema.TLS["mtls"].parse(doc.get("mtls", "STRICT" if sidecar else "DISABLE"), f"{path}.mtls")
    behaviour = schema.parse_behaviour(doc["behaviour"], f"{path}.behaviour") if "behaviour" in doc else Behaviour()
    traffic = schema.parse_traffic(doc["traffic"], f"{path}.traffic") if "traffic" in doc else TrafficPolicy()
    authorization = (
        schema.parse_authorization(doc["authorization"], f"{path}.authorization") if "authorization" in doc else None
    )
    return Service(
        name=name,
        replicas=replicas,
        behaviour=behaviour,
        calls=tuple(calls),
        sidecar=sidecar,
        mtls_mode=mtls,
        traffic=traffic,
        authorization=authorization,  # type: ignore[arg-type]
    )


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
        "traffic": schema.dump_traffic(service.traffic),
    }
    if service.authorization is not None:
        out["authorization"] = schema.dump_authorization(service.authorization)
    return out
