"""Outlier detection layer: ejects an endpoint after consecutive 5xx answers, for a growing time.

Like Envoy's: an endpoint that fails `consecutive_5xx` times in a row leaves the load
balancer's choice for `base_ejection_time` x (times it was ejected), capped at 300 s, and
comes back by itself when that time is over. Connect failures and resets count as 5xx
(Envoy's default). At most `max_ejection_percent` of the endpoints are out at once, though
at least one may be when the percent is above zero (again as Envoy does).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.mesh.config.flags import Flag
from sandbox.mesh.config.model import Clock, Endpoint, Handler, OutlierDetectionPolicy, Request, Response

MAX_EJECTION_TIME = 300.0
EndpointKey = tuple[str, int]


def endpoint_key(endpoint: Endpoint) -> EndpointKey:
    return (endpoint.host, endpoint.port)


@dataclass(frozen=True)
class OutlierEvent:
    """An ejection or a return, for the live view ("127.0.0.1:40123 ejected for 30 s")."""

    time: float
    endpoint: str  # "host:port"
    action: str  # "ejected", "returned" or "ejection refused (max_ejection_percent)"
    seconds: float = 0.0  # how long it is ejected for


class OutlierDetector:
    def __init__(self, policy: OutlierDetectionPolicy, *, clock: Clock) -> None:
        self.policy = policy  # may be replaced on a policy push; the ejections stay
        self._clock = clock
        self._consecutive: dict[EndpointKey, int] = {}
        self._ejected_until: dict[EndpointKey, float] = {}
        self._times_ejected: dict[EndpointKey, int] = {}
        self._healthy_since: dict[EndpointKey, float] = {}
        self.ejections_total = 0
        self.events: deque[OutlierEvent] = deque(maxlen=200)

    # ---------------------------------------------------------------- reading

    def available(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        """The endpoints not ejected right now (the same list object when none is)."""
        if not self._ejected_until:
            return endpoints
        self._return_expired(self._clock())
        if not self._ejected_until:
            return endpoints
        ejected = self._ejected_until
        return [e for e in endpoints if (e.host, e.port) not in ejected]

    def is_ejected(self, endpoint: Endpoint) -> bool:
        self._return_expired(self._clock())
        return endpoint_key(endpoint) in self._ejected_until

    def ejected_count(self) -> int:
        self._return_expired(self._clock())
        return len(self._ejected_until)

    def ejected_addresses(self) -> list[str]:
        """ "host:port" of each endpoint out of rotation right now."""
        self._return_expired(self._clock())
        return sorted(_address(key) for key in self._ejected_until)

    def max_ejectable(self, endpoint_count: int) -> int:
        percent = self.policy.max_ejection_percent
        if percent <= 0 or endpoint_count <= 0:
            return 0
        return max(1, int(endpoint_count * percent / 100))

    # ---------------------------------------------------------------- recording

    def record_success(self, endpoint: Endpoint) -> None:
        if self._consecutive:
            self._consecutive.pop((endpoint.host, endpoint.port), None)

    def record_failure(self, endpoint: Endpoint, endpoint_count: int) -> None:
        """Count one 5xx (or connect failure, reset, timeout) from `endpoint`, one of `endpoint_count`."""
        threshold = self.policy.consecutive_5xx
        if threshold is None:
            return
        key = (endpoint.host, endpoint.port)
        failures = self._consecutive.get(key, 0) + 1
        self._consecutive[key] = failures
        if failures < threshold:
            return
        now = self._clock()
        self._return_expired(now)
        if key in self._ejected_until:
            return
        if len(self._ejected_until) >= self.max_ejectable(endpoint_count):
            self.events.append(OutlierEvent(now, _address(key), "ejection refused (max_ejection_percent)"))
            return
        self._eject(key, now)

    def _eject(self, key: EndpointKey, now: float) -> None:
        base = self.policy.base_ejection_time
        times = self._times_ejected.get(key, 0)
        healthy_since = self._healthy_since.pop(key, None)
        if healthy_since is not None and base > 0:
            # The multiplier decays by one for each base period the endpoint stayed healthy.
            times = max(0, times - int((now - healthy_since) / base))
        times += 1
        self._times_ejected[key] = times
        seconds = min(base * times, max(base, MAX_EJECTION_TIME))
        self._ejected_until[key] = now + seconds
        self._consecutive[key] = 0
        self.ejections_total += 1
        self.events.append(OutlierEvent(now, _address(key), "ejected", seconds))

    def _return_expired(self, now: float) -> None:
        if not self._ejected_until:
            return
        expired = [key for key, until in self._ejected_until.items() if until <= now]
        for key in expired:
            until = self._ejected_until.pop(key)
            self._consecutive.pop(key, None)
            self._healthy_since[key] = until
            self.events.append(OutlierEvent(until, _address(key), "returned"))


def _address(key: EndpointKey) -> str:
    return f"{key[0]}:{key[1]}"


def outlier_layer(
    inner: Handler,
    detector: OutlierDetector | None,
    *,
    endpoint_count: Callable[[], int],
) -> Handler:
    """Report each answer of `request.endpoint` to `detector`; None passes straight through.

    The load balancer (outside this layer) asks `detector.available` which endpoints it may use.
    A breaker refusal (UO) never reached the endpoint, so it says nothing about its health.
    A per-try timeout sits inside this layer, so a hung try arrives as 504 UT and counts; a
    cancellation (the overall deadline, or the caller hanging up: DC) is about the caller, not
    the endpoint, and is not counted.
    """
    if detector is None:
        return inner

    async def handle(request: Request) -> Response:
        endpoint = request.endpoint
        if endpoint is None:
            return await inner(request)
        response = await inner(request)
        if response.status >= 500 and Flag.UO not in response.flags:
            detector.record_failure(endpoint, endpoint_count())
        else:
            detector.record_success(endpoint)
        return response

    return handle
