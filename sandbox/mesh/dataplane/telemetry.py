"""Per-sidecar telemetry: request counters, latency histograms, access log with Envoy flags, spans.

Recording is cheap (a few dict updates and one record per request); all formatting happens
when someone reads: `render_prometheus()` (text format 0.0.4) and `render_access_log()`.
Gauges of the policy cores (breaker state, ejections, retries) are read from the watched
destination states at render time, so they are exact without any bookkeeping per request.
"""

from __future__ import annotations

import bisect
import random
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sandbox.mesh.config.flags import Flag, Flags
from sandbox.mesh.config.model import Request, Response
from sandbox.mesh.dataplane.layers.authorization import service_of
from sandbox.mesh.dataplane.prometheus import _number, render_prometheus

# Prometheus-style latency buckets in seconds, fine at the low end where a proxy hop lives.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


# --------------------------------------------------------------------------- W3C trace context

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\Z")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def parse_traceparent(value: str | None) -> tuple[str, str, str] | None:
    """(trace_id, parent_span_id, trace_flags) from a valid W3C traceparent, else None."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, trace_flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, trace_flags


def trace_context(incoming: str | None, rng: random.Random) -> tuple[str, str]:
    """(traceparent to send on, parent span id or ""): keeps the trace id, makes a new span id."""
    span_id = f"{rng.getrandbits(64) or 1:016x}"
    parsed = parse_traceparent(incoming)
    if parsed is None:
        return f"00-{rng.getrandbits(128) or 1:032x}-{span_id}-01", ""
    trace_id, parent_span_id, trace_flags = parsed
    return f"00-{trace_id}-{span_id}-{trace_flags}", parent_span_id


def next_traceparent(incoming: str | None, rng: random.Random) -> str:
    """The traceparent for the next hop: same trace, new span; starts a trace if `incoming` is
    missing or invalid."""
    return trace_context(incoming, rng)[0]


# --------------------------------------------------------------------------- records


class Histogram:
    """A cumulative-on-render latency histogram (seconds)."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """[(le, count of observations <= le)], ending with ("+Inf", count)."""
        rows, running = [], 0
        for bound, count in zip(self.bounds, self.counts):
            running += count
            rows.append((_number(bound), running))
        rows.append(("+Inf", running + self.counts[-1]))
        return rows

    def quantile(self, q: float) -> float:
        """An upper-bound estimate of quantile q (the bucket bound it falls in); 0 when empty."""
        if self.count == 0:
            return 0.0
        rank, running = q * self.count, 0
        for bound, count in zip(self.bounds, self.counts):
            running += count
            if running >= rank:
                return bound
        return float("inf")


@dataclass(slots=True)
class AccessLogRecord:
    time: float  # wall-clock start, Unix seconds
    direction: str  # "outbound", "inbound"
    method: str
    path: str
    source: str  # calling service (inbound: from its identity; outbound: this workload)
    destination: str  # the logical service
    upstream: str  # "host:port" of the endpoint that answered, or "-"
    status: int  # 0 when no HTTP answer was given (caller went away, TLS failure)
    flags: str  # "-" or e.g. "UF,URX"
    duration_ms: float
    attempts: int
    detail: str
    traceparent: str  # as sent to the next hop (its span id is this hop's span)
    parent_span_id: str = ""
    bytes_sent: int = 0
    seq: int = 0  # this sidecar's running number for its records: a reader's cursor (`since`)
    tries: list[dict] = field(default_factory=list)  # each try: status, flags, endpoint, backoff_ms, duration_ms
    tls_reason: str = ""  # a refused handshake's reason (one of tls.REASONS), so readers need not parse `detail`

    def render(self) -> str:
        """One Envoy-style line:
        [start] "METHOD PATH HTTP/1.1" STATUS FLAGS BYTES DURATION_MS "UPSTREAM" ..."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time))
        millis = int((self.time % 1) * 1000)
        request_line = f"{self.method} {self.path} HTTP/1.1" if self.method != "-" else "- - -"
        detail = self.detail.replace('"', "'") if self.detail else "-"
        return (
            f'[{stamp}.{millis:03d}Z] {self.direction} "{request_line}" {self.status} {self.flags} '
            f'{self.bytes_sent} {self.duration_ms:.1f} "{self.upstream}" {self.source} -> {self.destination} '
            f'attempts={self.attempts} "{detail}" traceparent={self.traceparent or "-"}'
        )

    def flag_explanations(self) -> list[tuple[str, str]]:
        if self.flags == "-":
            return []
        return [(flag, flag.explanation) for flag in Flags.parse(self.flags).in_order()]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Span:
    """One hop of a trace, as a tracing UI would show it."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str  # "outbound b", "inbound b"
    start: float
    duration_ms: float
    status: int
    flags: str


class WatchedDestination(Protocol):
    """What telemetry reads from sandbox.mesh.dataplane.stack.DestinationState (duck-typed, no import)."""

    destination: str
    breaker: Any
    outliers: Any
    retry_stats: Any
    balancer_stats: Any


class SidecarTelemetry:
    """Everything one sidecar reports. `workload` names the sidecar's service; `direction`, if
    given, only sets the default for records that do not say theirs."""

    def __init__(
        self,
        workload: str,
        direction: str | None = None,
        *,
        log_size: int = 2000,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.workload = workload
        self.default_direction = direction or "outbound"
        self.rng = rng if rng is not None else random.Random()
        self.wall_clock = wall_clock
        self.requests: dict[tuple[str, str, str, int, str], int] = {}  # (dir, src, dst, status, flags)
        self.latency: dict[tuple[str, str, str], Histogram] = {}
        self.tls_failures: dict[tuple[str, str], int] = {}  # (direction, reason)
        self.log: deque[AccessLogRecord] = deque(maxlen=log_size)
        self.last_seq = 0
        self.tls_failures_by_peer: dict[tuple[str, str, str], int] = {}  # (direction, peer, reason)
        self.destinations: dict[str, WatchedDestination] = {}
        self.admission: Any = None  # the sidecar-wide bound on upstream requests (a CircuitBreaker), if any

    # ---------------------------------------------------------------- recording (hot path)

    def record_request(
        self,
        *,
        direction: str,
        request: Request,
        response: Response,
        started: float,
        duration: float,
        traceparent: str,
        parent_span_id: str = "",
        destination: str = "",
    ) -> AccessLogRecord:
        """Count one request and append its access-log record. `started` is wall-clock seconds,
        `duration` monotonic seconds."""
        if direction == "inbound":
            source = service_of(request.source_identity) or "unknown"
            destination = destination or request.destination or self.workload
        else:
            source = self.workload
            destination = request.destination or destination or "unknown"
        status = response.status
        flags = response.flags.text
        # A no-route name comes from the caller's Host header: as a label it would mint a time
        # series per made-up name. The metrics say "unknown"; the (bounded) access log keeps it.
        label = "unknown" if Flag.NR in response.flags else destination
        key = (direction, source, label, status, flags)
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram_key = (direction, source, label)
        histogram = self.latency.get(histogram_key)
        if histogram is None:
            histogram = self.latency[histogram_key] = Histogram()
        histogram.observe(duration)
        endpoint = request.endpoint
        record = AccessLogRecord(
            time=started,
            direction=direction,
            method=request.method,
            path=request.path,
            source=source,
            destination=destination,
            upstream=f"{endpoint.host}:{endpoint.port}" if endpoint is not None else "-",
            status=status,
            flags=flags,
            duration_ms=duration * 1000.0,
            attempts=request.attempt,
            detail=response.detail,
            traceparent=traceparent,
            parent_span_id=parent_span_id,
            bytes_sent=len(response.body),
            tries=[{k: v for k, v in t.items() if k != "_end"} for t in request.tries] if request.tries else [],
        )
        self._append(record)
        return record

    def record_tls_failure(self, reason: str, *, direction: str = "inbound", peer: str = "") -> None:
        """Count a failed TLS handshake by its short reason ("certificate expired", "unknown ca",
        ...). An inbound failure also gets an access-log line, as no request record will carry it;
        an outbound one shows in the record of the request that failed (flag UF, reason in detail)."""
        key = (direction, reason)
        self.tls_failures[key] = self.tls_failures.get(key, 0) + 1
        by_peer = (direction, peer or "unknown", reason)
        self.tls_failures_by_peer[by_peer] = self.tls_failures_by_peer.get(by_peer, 0) + 1
        if direction == "inbound":
            self._append(
                AccessLogRecord(
                    time=self.wall_clock(),
                    direction=direction,
                    method="-",
                    path="-",
                    source=peer or "unknown",
                    destination=self.workload,
                    upstream="-",
                    status=0,
                    flags="-",
                    duration_ms=0.0,
                    attempts=0,
                    detail=f"TLS handshake failed: {reason}",
                    traceparent="",
                    tls_reason=reason,
                )
            )

    def _append(self, record: AccessLogRecord) -> None:
        self.last_seq += 1
        record.seq = self.last_seq
        self.log.append(record)

    def watch(self, state: WatchedDestination) -> None:
        """Report the breaker, outlier and retry state of one destination (replaces an earlier
        state under the same name, as after a policy push)."""
        self.destinations[state.destination] = state

    # ---------------------------------------------------------------- reading

    def access_log(self, limit: int | None = None, since: int | None = None) -> list[AccessLogRecord]:
        """The newest `limit` records (all kept when None); with `since`, only records numbered after it,
        so a reader that passes the last `seq` it saw gets each record once."""
        records = list(self.log)
        if since is not None:
            # Numbers rise by one per record, so the new ones are the last (last_seq - since).
            new = max(0, self.last_seq - since)
            records = records[len(records) - min(new, len(records)) :]
        return records if limit is None else records[len(records) - min(limit, len(records)) :]

    def render_access_log(self, limit: int | None = None) -> str:
        return "".join(record.render() + "\n" for record in self.access_log(limit))

    def spans(self, limit: int | None = None) -> list[Span]:
        """One span per request this sidecar handled, derived from its access-log records."""
        spans = []
        for record in self.access_log(limit):
            parsed = parse_traceparent(record.traceparent)
            if parsed is None:
                continue
            trace_id, span_id, _ = parsed
            spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=record.parent_span_id,
                    name=f"{record.direction} {record.destination}",
                    start=record.time,
                    duration_ms=record.duration_ms,
                    status=record.status,
                    flags=record.flags,
                )
            )
        return spans

    def totals(self) -> dict[str, Any]:
        """A small JSON-able summary for a live view: counts by status and by flag, retries,
        ejections and breaker states per destination."""
        by_status: dict[str, int] = {}
        by_flag: dict[str, int] = {}
        total = 0
        for (_, _, _, status, flags), count in self.requests.items():
            total += count
            by_status[str(status)] = by_status.get(str(status), 0) + count
            for flag in Flags.parse(flags).in_order():
                by_flag[flag] = by_flag.get(flag, 0) + count
        destinations = {}
        for name, state in self.destinations.items():
            destinations[name] = {
                "retries": state.retry_stats.retries,
                "retry_budget_exhausted": state.retry_stats.budget_exhausted,
                "ejections": state.outliers.ejections_total if state.outliers else 0,
                "ejected_now": state.outliers.ejected_count() if state.outliers else 0,
                "circuit": state.breaker.state if state.breaker else "none",
                "lb_healthy_panic": state.balancer_stats.panic_requests,
            }
        tls = {}
        for (_, reason), count in self.tls_failures.items():
            tls[reason] = tls.get(reason, 0) + count
        return {
            "workload": self.workload,
            "requests": total,
            "by_status": by_status,
            "by_flag": by_flag,
            "tls_failures": tls,
            "destinations": destinations,
            **self.series(),
        }

    def series(self) -> dict[str, Any]:
        """The raw counters per edge, for a reader that computes its own per-interval deltas (the
        experiment runtime): requests by (direction, source, destination, status, flags), latency
        histogram bucket counts, TLS failures by peer, and each destination's overflows and ejected
        endpoints. `last_seq` is the access log's cursor right now."""
        overflow_and_ejected = {}
        for name, state in self.destinations.items():
            outliers = state.outliers
            overflow_and_ejected[name] = {
                "overflows": state.breaker.rejected if state.breaker else 0,
                "ejected": outliers.ejected_addresses() if outliers is not None else [],
            }
        return {
            "series": [[*key, count] for key, count in self.requests.items()],
            "latency_bounds": list(LATENCY_BUCKETS),
            "latency": [[*key, list(h.counts)] for key, h in self.latency.items()],
            "tls_failures_by_peer": [[*key, count] for key, count in self.tls_failures_by_peer.items()],
            "destinations_now": overflow_and_ejected,
            "last_seq": self.last_seq,
        }

    def render_prometheus(self) -> str:
        """All metrics in Prometheus text exposition format 0.0.4."""
        return render_prometheus(self)
