"""The shared vocabulary of the mesh engine: messages, handlers, policy and topology types.

Every other module of sandbox.mesh speaks in these types, so the proxy layers, the topology
parser and the runtime can be written and tested apart. Plain dataclasses, no I/O, no Django.
Changes here must be additive: other modules are built against these names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from sandbox.mesh.config.flags import Flags
from sandbox.mesh.config.layer_errors import UpstreamError
from sandbox.mesh.config.spiffe import spiffe_id_for

# The retry_on conditions (Envoy x-envoy-retry-on), in the order forms and messages list them.
RETRY_CONDITIONS_IN_ORDER = ("5xx", "gateway-error", "connect-failure", "reset", "retriable-4xx")

# --------------------------------------------------------------------------- messages


@dataclass
class Endpoint:
    """One replica of a service as the data plane reaches it."""

    service: str
    host: str  # always 127.0.0.1 in this sandbox
    port: int  # the replica's inbound (sidecar) port, or the app port when it has no sidecar
    spiffe_id: str = ""  # the identity its certificate must carry; "" when it has no sidecar
    replica: int = 0


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""
    destination: str = ""  # the logical service the caller asked for (outbound side)
    source_identity: str = ""  # SPIFFE ID of the verified peer (inbound side), "" if plaintext
    endpoint: Endpoint | None = None  # chosen by the load balancer layer
    attempt: int = 1  # 1 for the first try, 2 for the first retry, ...
    tries: list[dict] | None = None  # one entry per try, noted by the attempt layer (outbound only)


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # Envoy-style response flags gathered on the way (sandbox.mesh.config.flags declares them)
    flags: Flags = field(default_factory=Flags)
    detail: str = ""  # a human-readable reason (e.g. the TLS handshake error text)
    error: UpstreamError | None = None  # why the proxy failed it, with its context; None for an answer

    def __post_init__(self) -> None:
        # Callers may pass any iterable of flag words; it becomes the immutable, checked type here.
        if not isinstance(self.flags, Flags):
            self.flags = Flags(self.flags)


Handler = Callable[[Request], Awaitable[Response]]
Clock = Callable[[], float]  # monotonic seconds; injected so cores are tested without sleeping


# --------------------------------------------------------------------------- policy

MtlsMode = Literal["STRICT", "PERMISSIVE", "DISABLE"]
LoadBalancer = Literal["round_robin", "least_request"]


@dataclass(frozen=True)
class TimeoutPolicy:
    request_timeout: float | None = None  # seconds for the whole call, retries included


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 0  # retries after the first try; 0 = no retry layer
    per_try_timeout: float | None = None
    retry_on: frozenset[str] = frozenset({"5xx", "connect-failure", "reset"})
    backoff_base: float = 0.025  # seconds; jittered exponential backoff starts here
    backoff_max: float = 0.250
    budget_ratio: float = 0.2  # retries may add at most 20% of requests ...
    budget_min_per_second: float = 10.0  # ... plus 10 retries per second


@dataclass(frozen=True)
class CircuitBreakerPolicy:
    max_connections: int | None = None
    max_pending_requests: int | None = None


@dataclass(frozen=True)
class OutlierDetectionPolicy:
    consecutive_5xx: int | None = None  # None = no outlier detection
    base_ejection_time: float = 30.0
    max_ejection_percent: int = 10


@dataclass(frozen=True)
class FaultPolicy:
    abort_percent: float = 0.0
    abort_status: int = 503
    delay_percent: float = 0.0
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class RateLimitPolicy:
    """A local rate limit on the service's inbound (Envoy's token bucket): `burst` requests at once, refilled
    at `requests_per_second`. None = no limit."""

    requests_per_second: float | None = None
    burst: int = 1


@dataclass(frozen=True)
class AuthorizationRule:
    # Empty tuple = matches anything. Sources are SPIFFE IDs or bare service names.
    sources: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()  # exact, or a prefix ending in "*"


@dataclass(frozen=True)
class AuthorizationPolicy:
    allow: tuple[AuthorizationRule, ...] = ()  # if non-empty, only matching requests pass
    deny: tuple[AuthorizationRule, ...] = ()  # checked first; a match is refused with 403


@dataclass(frozen=True)
class TrafficPolicy:
    """What callers' outbound sidecars apply to requests *to* one service (Istio's
    VirtualService + DestinationRule for that host)."""

    load_balancer: LoadBalancer = "round_robin"
    timeout: TimeoutPolicy = TimeoutPolicy()
    retry: RetryPolicy = RetryPolicy()
    circuit_breaker: CircuitBreakerPolicy = CircuitBreakerPolicy()
    outlier_detection: OutlierDetectionPolicy = OutlierDetectionPolicy()
    fault: FaultPolicy = FaultPolicy()
    # Enforced by the service's own inbound sidecars, not by its callers (Envoy's local rate limit).
    rate_limit: RateLimitPolicy = RateLimitPolicy()


# --------------------------------------------------------------------------- topology


@dataclass(frozen=True)
class Behaviour:
    """How a demo workload answers; all of it can be changed at run time."""

    latency_ms: float = 0.0
    error_rate: float = 0.0  # fraction 0..1 of requests answered with error_status
    error_status: int = 503
    hang: bool = False  # accept and never answer


@dataclass(frozen=True)
class Service:
    name: str
    replicas: int = 1
    behaviour: Behaviour = Behaviour()
    calls: tuple[str, ...] = ()  # services this one calls for each request it serves
    sidecar: bool = True
    mtls_mode: MtlsMode = "STRICT"  # what its inbound sidecar accepts
    traffic: TrafficPolicy = TrafficPolicy()  # applied by callers of this service
    authorization: AuthorizationPolicy | None = None  # applied by its inbound sidecar


@dataclass(frozen=True)
class Topology:
    name: str
    services: tuple[Service, ...]
    entry: str  # the service the load generator calls
    trust_domain: str = "meshlearn.local"
    namespace: str = "default"

    def service(self, name: str) -> Service:
        for candidate in self.services:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def spiffe_id(self, service: str) -> str:
        return spiffe_id_for(self.trust_domain, self.namespace, service)
