"""A sidecar's metrics in Prometheus text exposition format 0.0.4: one small writer per family group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class MetricsSource(Protocol):
    """What the writers read from a sidecar's telemetry (telemetry.SidecarTelemetry is one)."""

    workload: str
    requests: dict[tuple[str, str, str, int, str], int]
    latency: dict[tuple[str, str, str], Any]  # telemetry.Histogram
    destinations: dict[str, Any]  # telemetry.WatchedDestination
    admission: Any  # the sidecar's upstream admission bound, or None
    tls_failures: dict[tuple[str, str], int]


# One family with a sample per destination whose `part` (retry_stats, outliers, balancer_stats, breaker) is set:
# (name, kind, help, part, the sample's value read from that part).
PER_DESTINATION: tuple[tuple[str, str, str, str, Callable[[Any], object]], ...] = (
    ("mesh_retries_total", "counter", "Retries sent (not counting first tries).", "retry_stats", lambda s: s.retries),
    (
        "mesh_retry_budget_exhausted_total",
        "counter",
        "Retries refused by the retry budget.",
        "retry_stats",
        lambda s: s.budget_exhausted,
    ),
    (
        "mesh_outlier_ejections_total",
        "counter",
        "Endpoints ejected by outlier detection.",
        "outliers",
        lambda d: d.ejections_total,
    ),
    (
        "mesh_outlier_ejected_endpoints",
        "gauge",
        "Endpoints ejected right now.",
        "outliers",
        lambda d: d.ejected_count(),
    ),
    (
        "mesh_lb_healthy_panic_total",
        "counter",
        "Tries sent to any endpoint because fewer than half were available (healthy panic).",
        "balancer_stats",
        lambda s: s.panic_requests,
    ),
    (
        "mesh_circuit_breaker_open",
        "gauge",
        "1 while the circuit breaker refuses new requests.",
        "breaker",
        lambda b: int(b.is_open),
    ),
    (
        "mesh_circuit_breaker_active_requests",
        "gauge",
        "Requests holding an upstream connection.",
        "breaker",
        lambda b: b.active,
    ),
    (
        "mesh_circuit_breaker_pending_requests",
        "gauge",
        "Requests waiting for a connection.",
        "breaker",
        lambda b: b.pending,
    ),
    (
        "mesh_circuit_breaker_overflow_total",
        "counter",
        "Requests refused by the breaker (UO).",
        "breaker",
        lambda b: b.rejected,
    ),
)

# The sidecar-wide upstream admission bound: (name, kind, help, the attribute of the admission counted).
ADMISSION = (
    ("mesh_sidecar_upstream_requests", "gauge", "Upstream requests in flight, all destinations.", "active"),
    ("mesh_sidecar_upstream_pending_requests", "gauge", "Upstream requests waiting for a place.", "pending"),
    (
        "mesh_sidecar_upstream_overflow_total",
        "counter",
        "Upstream requests refused (UO) because the sidecar was at its bound.",
        "rejected",
    ),
)


def render_prometheus(telemetry: MetricsSource) -> str:
    out: list[str] = []
    for write in (_requests, _latency, _per_destination, _admission, _tls_failures):
        write(out, telemetry)
    return "\n".join(out) + "\n"


def _requests(out: list[str], t: MetricsSource) -> None:
    _family(out, "mesh_requests_total", "counter", "Requests handled, by status and response flags.")
    for (direction, source, destination, status, flags), count in sorted(t.requests.items()):
        labels = _labels(
            workload=t.workload,
            direction=direction,
            source=source,
            destination=destination,
            status=str(status),
            response_flags=flags,
        )
        out.append(f"mesh_requests_total{labels} {count}")


def _latency(out: list[str], t: MetricsSource) -> None:
    _family(out, "mesh_request_duration_seconds", "histogram", "Request latency seen by this sidecar.")
    for (direction, source, destination), histogram in sorted(t.latency.items()):
        base = dict(workload=t.workload, direction=direction, source=source, destination=destination)
        for le, count in histogram.cumulative():
            out.append(f"mesh_request_duration_seconds_bucket{_labels(**base, le=le)} {count}")
        out.append(f"mesh_request_duration_seconds_sum{_labels(**base)} {_number(histogram.sum)}")
        out.append(f"mesh_request_duration_seconds_count{_labels(**base)} {histogram.count}")


def _per_destination(out: list[str], t: MetricsSource) -> None:
    states = sorted(t.destinations.items())
    for name, kind, help_text, part, value in PER_DESTINATION:
        _family(out, name, kind, help_text)
        for destination, state in states:
            core = getattr(state, part)
            if core is not None:
                out.append(f"{name}{_labels(workload=t.workload, destination=destination)} {value(core)}")


def _admission(out: list[str], t: MetricsSource) -> None:
    if t.admission is None:
        return
    for name, kind, help_text, attribute in ADMISSION:
        _family(out, name, kind, help_text)
        out.append(f"{name}{_labels(workload=t.workload)} {getattr(t.admission, attribute)}")


def _tls_failures(out: list[str], t: MetricsSource) -> None:
    _family(out, "mesh_tls_handshake_failures_total", "counter", "Failed TLS handshakes, by reason.")
    for (direction, reason), count in sorted(t.tls_failures.items()):
        out.append(
            f"mesh_tls_handshake_failures_total{_labels(workload=t.workload, direction=direction, reason=reason)} {count}"
        )


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    # Text format 0.0.4 names a counter family with its _total suffix, as prometheus_client does.
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")


def _labels(**labels: str) -> str:
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else f"{value:.1f}"
