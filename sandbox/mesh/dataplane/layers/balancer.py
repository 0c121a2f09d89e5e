"""Load balancing: choose one endpoint per try (round robin or least request) among those not ejected."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.mesh.config.flags import Flag
from sandbox.mesh.config.model import Endpoint, Handler, LoadBalancer, Request, Response

NO_HEALTHY_UPSTREAM_BODY = b"no healthy upstream"
NO_ROUTE_BODY = b"route not found"
# Envoy's default healthy panic threshold: below this percentage of available endpoints, the
# balancer ignores ejections and uses every endpoint, so outlier detection cannot take a whole
# service (or its only replica) out of rotation.
HEALTHY_PANIC_THRESHOLD_PERCENT = 50


@dataclass
class BalancerStats:
    """What the balancer did, for metrics: tries sent in panic mode (Envoy's upstream_rq_lb_healthy_panic)."""

    panic_requests: int = 0


class RoundRobin:
    """Each endpoint in turn."""

    def __init__(self) -> None:
        self._next = 0

    def choose(self, endpoints: list[Endpoint]) -> Endpoint:
        endpoint = endpoints[self._next % len(endpoints)]
        self._next += 1
        return endpoint

    def started(self, endpoint: Endpoint) -> None:
        pass

    def finished(self, endpoint: Endpoint) -> None:
        pass


class LeastRequest:
    """Envoy's least request with two choices: pick two distinct endpoints at random and use
    the one with fewer requests in flight. It steers away from a slow replica without the
    herd effect of always picking the single least-loaded one."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.in_flight: dict[tuple[str, int], int] = {}

    def choose(self, endpoints: list[Endpoint]) -> Endpoint:
        count = len(endpoints)
        if count == 1:
            return endpoints[0]
        first = self._rng.randrange(count)
        second = self._rng.randrange(count - 1)
        if second >= first:
            second += 1
        a, b = endpoints[first], endpoints[second]
        in_flight = self.in_flight
        if in_flight.get((b.host, b.port), 0) < in_flight.get((a.host, a.port), 0):
            return b
        return a

    def started(self, endpoint: Endpoint) -> None:
        key = (endpoint.host, endpoint.port)
        self.in_flight[key] = self.in_flight.get(key, 0) + 1

    def finished(self, endpoint: Endpoint) -> None:
        key = (endpoint.host, endpoint.port)
        left = self.in_flight.get(key, 0) - 1
        if left > 0:
            self.in_flight[key] = left
        else:
            self.in_flight.pop(key, None)


Balancer = RoundRobin | LeastRequest


def no_route_response(request: Request) -> Response:
    """404 with flag NR: the sidecar knows no service by the requested name."""
    return Response(
        404,
        body=NO_ROUTE_BODY,
        flags={Flag.NR},
        detail=f"no route to {request.destination or 'the requested destination'}",
    )


def make_balancer(kind: LoadBalancer, rng: random.Random) -> Balancer:
    if kind == "round_robin":
        return RoundRobin()
    if kind == "least_request":
        return LeastRequest(rng)
    raise ValueError(f"unknown load balancer {kind!r}; expected round_robin or least_request")


def balancer_layer(
    inner: Handler,
    *,
    balancer: Balancer,
    endpoints: Callable[[], list[Endpoint]],
    available: Callable[[list[Endpoint]], list[Endpoint]] | None = None,
    stats: BalancerStats | None = None,
) -> Handler:
    """Set `request.endpoint` for each try, then call `inner`.

    `endpoints()` lists the destination's endpoints; raising LookupError means the
    destination is unknown (404, flag NR); none at all is 503 with flag UH. `available` drops
    ejected endpoints; when fewer than HEALTHY_PANIC_THRESHOLD_PERCENT of them are left, the
    try goes to any endpoint (panic mode, counted in `stats`). A retry avoids the endpoint
    that just failed when another is available (Istio's default previous-hosts predicate).
    """
    if stats is None:
        stats = BalancerStats()

    async def handle(request: Request) -> Response:
        try:
            candidates = endpoints()
        except LookupError:
            return no_route_response(request)
        if available is not None and candidates:
            healthy = available(candidates)
            if len(healthy) * 100 < len(candidates) * HEALTHY_PANIC_THRESHOLD_PERCENT:
                stats.panic_requests += 1
            else:
                candidates = healthy
        if not candidates:
            return Response(
                503,
                body=NO_HEALTHY_UPSTREAM_BODY,
                flags={Flag.UH},
                detail=f"no healthy endpoint for {request.destination or 'the destination'}",
            )
        previous = request.endpoint
        if previous is not None and request.attempt > 1 and len(candidates) > 1:
            others = [c for c in candidates if c.port != previous.port or c.host != previous.host]
            if others:
                candidates = others
        endpoint = balancer.choose(candidates)
        request.endpoint = endpoint
        balancer.started(endpoint)
        try:
            return await inner(request)
        finally:
            balancer.finished(endpoint)

    return handle
