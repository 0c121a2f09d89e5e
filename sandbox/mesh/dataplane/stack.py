"""Composes the policy layers into a sidecar's outbound and inbound handlers, outermost first.

Order is semantics. Outbound, for requests to one destination:

    access log/metrics -> overall timeout (UT) -> fault injection (FI/DI)
      -> retry (budget, backoff; URX) -> each try noted -> load balancer (UH, NR, healthy panic)
      -> outlier detection -> circuit breaker (UO) -> per-try timeout (UT)
      -> upstream errors as 503 (UF, UC) -> send

so the overall deadline covers every try and backoff, an injected fault is neither retried
nor ejected, each try picks an endpoint afresh (avoiding the one that just failed), and a
breaker refusal never counts against an endpoint's health. The per-try timeout starts once
the try holds a connection slot (as Envoy's starts when the pool is ready; waiting for a slot
is bounded by the overall timeout) and its 504 UT reaches outlier detection as an answer of
that endpoint, while a cancellation from outside (overall timeout, caller gone: DC) is not
held against it.

Inbound: access log/metrics -> path normalisation (400 for a path with no single meaning, 404 for the
workload's /_mesh/ admin paths) -> authorization (403 RBAC) -> upstream errors -> forward.

The policy cores' state (ejections, requests in flight, retry budget, round-robin position)
lives in a DestinationState: pass the same one when rebuilding after a policy push.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sandbox.mesh.config.model import (
    AuthorizationPolicy,
    Clock,
    Endpoint,
    Handler,
    RateLimitPolicy,
    Request,
    Response,
    TrafficPolicy,
)
from sandbox.mesh.dataplane.layers.access import access_layer
from sandbox.mesh.dataplane.layers.attempts import attempt_layer
from sandbox.mesh.dataplane.layers.authorization import authorization_layer
from sandbox.mesh.dataplane.layers.balancer import (
    Balancer,
    BalancerStats,
    balancer_layer,
    make_balancer,
    no_route_response,
)
from sandbox.mesh.dataplane.layers.circuit_breaker import CircuitBreaker, circuit_breaker_layer
from sandbox.mesh.dataplane.layers.fault import fault_layer
from sandbox.mesh.dataplane.layers.inbound_path import inbound_path_layer
from sandbox.mesh.dataplane.layers.outlier import OutlierDetector, outlier_layer
from sandbox.mesh.dataplane.layers.rate_limit import rate_limit_layer
from sandbox.mesh.dataplane.layers.retry import RetryBudget, RetryStats, retry_layer
from sandbox.mesh.dataplane.layers.timeout import timeout_layer
from sandbox.mesh.dataplane.layers.upstream import upstream_errors_as_responses
from sandbox.mesh.dataplane.telemetry import SidecarTelemetry

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class DestinationState:
    """What outlives one build of a destination's stack: keep one per destination and pass it
    to every rebuild so a policy push does not forget ejections or requests in flight."""

    destination: str
    budget: RetryBudget | None = None
    retry_stats: RetryStats = field(default_factory=RetryStats)
    breaker: CircuitBreaker | None = None
    outliers: OutlierDetector | None = None
    balancer: Balancer | None = None
    balancer_kind: str = ""
    balancer_stats: BalancerStats = field(default_factory=BalancerStats)

    def apply(self, policy: TrafficPolicy, *, clock: Clock, rng: random.Random) -> None:
        """Create, reconfigure or drop each core to match `policy`."""
        retry = policy.retry
        if retry.attempts > 0:
            if self.budget is None:
                self.budget = RetryBudget(
                    clock=clock, ratio=retry.budget_ratio, min_per_second=retry.budget_min_per_second
                )
            else:
                self.budget.ratio = retry.budget_ratio
                self.budget.min_per_second = retry.budget_min_per_second
        else:
            self.budget = None

        limits = policy.circuit_breaker
        if limits.max_connections is not None or limits.max_pending_requests is not None:
            if self.breaker is None:
                self.breaker = CircuitBreaker(limits)
            else:
                self.breaker.configure(limits)
        else:
            self.breaker = None

        detection = policy.outlier_detection
        if detection.consecutive_5xx is not None:
            if self.outliers is None:
                self.outliers = OutlierDetector(detection, clock=clock)
            else:
                self.outliers.policy = detection
        else:
            self.outliers = None  # turning detection off returns every ejected endpoint

        if self.balancer is None or self.balancer_kind != policy.load_balancer:
            self.balancer = make_balancer(policy.load_balancer, rng)
            self.balancer_kind = policy.load_balancer


def outbound_stack(
    *,
    policy: TrafficPolicy,
    endpoints: Callable[[], list[Endpoint]],
    send: Handler,
    clock: Clock,
    sleep: Sleep,
    rng: random.Random,
    telemetry: SidecarTelemetry,
    destination: str = "",
    state: DestinationState | None = None,
) -> Handler:
    """The handler a sidecar's outbound listener calls for requests to one destination.

    `endpoints()` lists the destination's endpoints now (raise LookupError for an unknown
    destination: 404 NR). `send` sends `request` to `request.endpoint` and returns its Response
    or raises UpstreamError. `destination` names it in metrics when requests do not; `state`
    keeps the cores across rebuilds (one is made when omitted).
    """
    if state is None:
        state = DestinationState(destination or _destination_of(endpoints))
    state.apply(policy, clock=clock, rng=rng)
    telemetry.watch(state)
    assert state.balancer is not None

    def endpoint_count() -> int:
        try:
            return len(endpoints())
        except LookupError:
            return 0

    handler = upstream_errors_as_responses(send)
    handler = timeout_layer(handler, policy.retry.per_try_timeout, scope="per-try")
    handler = circuit_breaker_layer(handler, state.breaker)
    handler = outlier_layer(handler, state.outliers, endpoint_count=endpoint_count)
    handler = balancer_layer(
        handler,
        balancer=state.balancer,
        endpoints=endpoints,
        available=state.outliers.available if state.outliers is not None else None,
        stats=state.balancer_stats,
    )
    handler = attempt_layer(handler, clock=clock)
    if state.budget is not None:
        handler = retry_layer(handler, policy.retry, budget=state.budget, sleep=sleep, rng=rng, stats=state.retry_stats)
    handler = fault_layer(handler, policy.fault, sleep=sleep, rng=rng)
    handler = timeout_layer(handler, policy.timeout.request_timeout, scope="request")
    return access_layer(handler, telemetry=telemetry, direction="outbound", clock=clock, destination=state.destination)


def inbound_stack(
    *,
    authorization: AuthorizationPolicy | None,
    forward: Handler,
    telemetry: SidecarTelemetry,
    clock: Clock = time.monotonic,
    rate_limit: RateLimitPolicy | None = None,
) -> Handler:
    """The handler a sidecar's inbound listener calls once the peer is verified (its SPIFFE ID
    in `request.source_identity`, "" for plaintext). `forward` hands the request to the local
    service; its failures become 503 UF/UC."""
    handler = upstream_errors_as_responses(forward)
    handler = authorization_layer(handler, authorization)
    handler = inbound_path_layer(handler)
    # Outermost but the log: an over-limit request costs nothing more than its log line (as in Envoy).
    if rate_limit is not None:
        handler = rate_limit_layer(handler, rate_limit, clock=clock)
    return access_layer(handler, telemetry=telemetry, direction="inbound", clock=clock, destination=telemetry.workload)


def no_route_stack(*, telemetry: SidecarTelemetry, clock: Clock = time.monotonic) -> Handler:
    """For a destination the sidecar knows nothing about: 404 with flag NR, logged like any request."""

    async def no_route(request: Request) -> Response:
        return no_route_response(request)

    return access_layer(no_route, telemetry=telemetry, direction="outbound", clock=clock)


def _destination_of(endpoints: Callable[[], list[Endpoint]]) -> str:
    try:
        known = endpoints()
    except LookupError:
        return "unknown"
    return known[0].service if known else "unknown"
