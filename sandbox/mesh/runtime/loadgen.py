"""Open-loop constant-rate load: requests leave on schedule whatever the answers do.

Latency is measured from each request's *scheduled* send time, not from when a connection was
free, so a stall shows up in the percentiles instead of silently lowering the offered load
(no coordinated omission).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.mesh.config.model import Request, UpstreamError
from sandbox.mesh.dataplane import http1, tls


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-fraction * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


@dataclass(slots=True)
class Sample:
    scheduled: float  # seconds since the run started
    latency: float  # seconds from scheduled send to the end of the response
    status: int  # 0 when no response came (connect failure, timeout)
    flags: str = ""
    # Only for a request that got no answer because its connection failed: the callee never saw it as a request
    # (a refused handshake is a reset to the callee), so the caller's side is the one that can say what and why.
    detail: str = ""
    tls_reason: str = ""  # one of tls.REASONS when the TLS handshake (or the peer's identity) failed
    started: float = 0.0  # wall clock, Unix seconds
    upstream: str = ""  # "host:port" it was sent to
    method: str = "GET"
    path: str = "/"


@dataclass
class Window:
    """What happened to the requests scheduled in one stretch of time."""

    count: int = 0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, sample: Sample) -> None:
        self.count += 1
        self.ok += 200 <= sample.status < 300
        self.latencies.append(sample.latency)
        self.statuses[sample.status] = self.statuses.get(sample.status, 0) + 1

    def summary(self) -> dict:
        values = sorted(self.latencies)
        return {
            "requests": self.count,
            "success_rate": self.ok / self.count if self.count else None,
            "p50_ms": percentile(values, 0.50) * 1000,
            "p95_ms": percentile(values, 0.95) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000,
            "max_ms": (values[-1] * 1000) if values else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


class LoadGenerator:
    def __init__(
        self,
        host: str,
        ports: list[int],
        *,
        rate: float,
        host_header: str,
        path: str = "/",
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        max_in_flight: int = 512,
        expected_identity: str | None = None,
    ) -> None:
        if ssl_context is not None:
            # This client verifies the entry's certificate: when it refuses one, the entry's sidecar should get the
            # alert ("certificate expired") rather than a bare reset, as it does from another sidecar.
            from sandbox.mesh.dataplane.tls import send_tls_alerts_on_handshake_failure

            send_tls_alerts_on_handshake_failure()
        hook = None
        if ssl_context is not None and expected_identity is not None:
            # As a sidecar does: a valid certificate is not enough, it must be the identity of the service called.
            def hook(conn: http1.Connection) -> None:
                try:
                    tls.check_peer_identity(conn.ssl_object, expected_identity)
                except tls.PeerIdentityError as exc:
                    raise http1.TlsConnectError(exc, str(exc)) from exc

        self.pools = [http1.ConnectionPool(host, port, ssl_context=ssl_context, on_connect=hook) for port in ports]
        self.rate = rate
        self.base_rate = rate  # what `heal` returns to after a `rate` command
        self.host_header = host_header
        self.path = path
        self.timeout = timeout
        self.samples: list[Sample] = []
        self.in_flight = 0
        self._slots = asyncio.Semaphore(max_in_flight)
        self._next_pool = 0
        self._tasks: set[asyncio.Task] = set()
        self.start_time = 0.0

    async def _one(self, scheduled_at: float) -> None:
        flags = detail = tls_reason = ""
        started = time.time()
        async with self._slots:  # waiting for a slot counts in the latency: it is part of the stall
            pool = self.pools[self._next_pool % len(self.pools)]
            upstream = f"{pool.host}:{pool.port}"
            self._next_pool += 1
            self.in_flight += 1
            try:
                request = Request("GET", self.path)
                response = await asyncio.wait_for(pool.request(request, self.host_header), self.timeout)
                status = response.status
                flags = response.headers.get("x-mesh-flags", "")
            except http1.TlsConnectError as exc:
                status, flags = 0, exc.flag
                tls_reason = tls.classify_handshake_error(exc.original, side="client")
                detail = f"TLS error: {tls.describe_handshake_error(exc.original, side='client')}"
            except UpstreamError as exc:
                status, flags, detail = 0, exc.flag, exc.reason
            except TimeoutError:
                status, flags = 0, "timeout"
            except Exception as exc:  # noqa: BLE001 - a request that failed in an unforeseen way is still a failure
                status, flags = 0, type(exc).__name__
            finally:
                self.in_flight -= 1
        now = time.monotonic()
        self.samples.append(
            Sample(
                scheduled_at - self.start_time,
                now - scheduled_at,
                status,
                flags,
                detail=detail,
                tls_reason=tls_reason,
                started=started,
                upstream=upstream,
                path=self.path,
            )
        )

    async def run(self, duration: float, *, should_stop: Callable[[], bool] = lambda: False) -> list[Sample]:
        """Send at `self.rate` (which may change while running) for `duration` seconds."""
        loop = asyncio.get_running_loop()
        self.start_time = next_at = time.monotonic()
        end = self.start_time + duration
        # The schedule is a float sum: without the margin, 10 steps of 0.02 s fall a hair short of 0.2 s and an
        # 11th request would leave.
        while next_at < end - 1e-9 and not should_stop():
            delay = next_at - time.monotonic()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            task = loop.create_task(self._one(next_at))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            next_at += 1.0 / max(self.rate, 0.001)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.timeout + 1)
        return self.samples

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for pool in self.pools:
            pool.close()


def summarize(samples: list[Sample]) -> dict:
    window = Window()
    for sample in samples:
        window.add(sample)
    return window.summary()


def window_between(samples: list[Sample], start: float, end: float) -> Window:
    window = Window()
    for sample in samples:
        if start <= sample.scheduled < end:
            window.add(sample)
    return window
