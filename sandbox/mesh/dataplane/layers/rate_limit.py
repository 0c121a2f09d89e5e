"""Local rate limit layer: a service's inbound sidecar lets in `burst` requests at once, refilled at a steady
rate, and answers the rest 429 with flag RL at once (Envoy's local_ratelimit filter, a token bucket).

The bucket is pure: it takes the time as an argument, so a table test can drive it without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sandbox.mesh.config.flags import Flag
from sandbox.mesh.config.model import Handler, RateLimitPolicy, Request, Response

LIMITED_BODY = b"local_rate_limited"  # Envoy's own reply body, so the decoder reads both the same way


@dataclass
class TokenBucket:
    """`burst` tokens at most, `rate` tokens added per second; a request takes one or is refused."""

    rate: float
    burst: int
    tokens: float = -1.0  # full at the first take
    last: float | None = None

    def take(self, now: float) -> bool:
        if self.last is None:
            self.tokens = float(self.burst)
        else:
            # max(): a clock that steps back adds nothing, and never takes tokens away.
            self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = now if self.last is None else max(self.last, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def rate_limit_layer(inner: Handler, policy: RateLimitPolicy, *, clock: Callable[[], float]) -> Handler:
    """Refuse with 429 RL what is over `policy`'s bucket; no limit passes straight through."""
    if policy.requests_per_second is None:
        return inner
    bucket = TokenBucket(policy.requests_per_second, policy.burst)
    detail = f"local rate limit: over {policy.requests_per_second:g} requests per second (burst {policy.burst})"

    async def handle(request: Request) -> Response:
        if not bucket.take(clock()):
            return Response(429, body=LIMITED_BODY, flags={Flag.RL}, detail=detail)
        return await inner(request)

    return handle
