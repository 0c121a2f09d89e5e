"""Arithmetic on the counters the observer reads: quantiles of a latency histogram, success ratios, and a failure seen from both ends counted once."""

from __future__ import annotations


def quantile_ms(bounds: list[float], counts: list[int], q: float) -> float:
    """Quantile q of a bucketed histogram (seconds), interpolated inside its bucket as Prometheus does; in ms."""
    total = sum(counts)
    if total == 0:
        return 0.0
    rank, running, lower = q * total, 0, 0.0
    for index, count in enumerate(counts):
        upper = bounds[index] if index < len(bounds) else bounds[-1]
        if count and running + count >= rank:
            return (lower + (upper - lower) * (rank - running) / count) * 1000
        running += count
        lower = upper
    return bounds[-1] * 1000


def _success(ok: int, total: int) -> float | None:
    return ok / total if total else None


def _both_views(caller: dict[str, int], callee: dict[str, int]) -> dict[str, int]:
    """Handshake failures on one edge by reason, from the caller's and the callee's counts. One failed handshake
    is seen by both ends (an expired certificate, an unknown CA), some by one end only (plaintext at a STRICT
    port): per reason, the larger count, not the sum."""
    merged = dict(caller)
    for reason, count in callee.items():
        merged[reason] = max(merged.get(reason, 0), count)
    return merged
