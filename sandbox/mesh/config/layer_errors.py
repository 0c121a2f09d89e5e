"""Why a request failed inside the proxy, as types that carry their context (linkerd's `TimeoutError(Duration)`).

`UpstreamError` is the base: the flag it maps to, a reason a learner reads, and the retry condition it
satisfies. The transport raises it (connect failure, reset); the upstream layer turns it into a 503/504
Response that keeps the error in `Response.error`, so a layer above can ask what expired, what was open
or how many tries were made, without reading the detail text. The wire (status, body, flags, detail) is
unchanged by the type.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.mesh.config.flags import Flag


class UpstreamError(Exception):
    """A failure before any response arrived: connect failure, reset, timeout, TLS failure.

    `flag` is the Envoy response flag it maps to (UF, UC, UT, ...); `retry_on` names the
    retry condition it satisfies ("connect-failure", "reset", ...), or "" if none.
    """

    def __init__(self, flag: str, reason: str, retry_on: str = "") -> None:
        super().__init__(reason)
        self.flag = Flag(flag)
        self.reason = reason
        self.retry_on = retry_on


class ConnectFailure(UpstreamError):
    """The upstream could not be reached (refused, unreachable, TLS handshake failed): flag UF."""

    def __init__(self, reason: str) -> None:
        super().__init__(Flag.UF, reason, "connect-failure")


class UpstreamReset(UpstreamError):
    """The upstream closed or reset the connection before a whole answer: flag UC."""

    def __init__(self, reason: str) -> None:
        super().__init__(Flag.UC, reason, "reset")


class RequestTimeout(UpstreamError):
    """A deadline expired: `seconds` is the timeout that did, `scope` "request" or "per-try"."""

    def __init__(self, seconds: float, scope: str = "request") -> None:
        super().__init__(Flag.UT, f"{scope} timeout of {seconds * 1000:g} ms exceeded")
        self.seconds = seconds
        self.scope = scope


@dataclass(frozen=True)
class BreakerState:
    """The circuit breaker as it stood when it refused: in flight and waiting, against their limits."""

    active: int
    pending: int
    max_connections: int
    max_pending_requests: int


class BreakerOpen(UpstreamError):
    """The circuit breaker refused at once (flag UO); `state` is what it held then."""

    def __init__(self, state: BreakerState) -> None:
        super().__init__(
            Flag.UO,
            f"circuit breaker open: {state.active} requests in flight "
            f"(max_connections {state.max_connections}), {state.pending} waiting "
            f"(max_pending_requests {state.max_pending_requests})",
        )
        self.state = state


class RetriesExhausted(UpstreamError):
    """Every allowed retry was used and the last answer still qualified (flag URX).

    `retries` is the retries made after the first try; `last` the error of the last try, if it had one.
    """

    def __init__(self, retries: int, last: UpstreamError | None = None) -> None:
        super().__init__(Flag.URX, f"{retries} retries exhausted")
        self.retries = retries
        self.last = last
