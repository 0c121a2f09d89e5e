"""When an upstream endpoint may be asked for a new connection again after a failed handshake.

On a saturated box a TLS handshake that times out is usually not the endpoint's fault: the CPU is busy.
Retrying it at once starts another handshake that costs more CPU and times out too (a reconnect storm, a
metastable collapse). So each endpoint backs off: bounded exponential delay with jitter (so the callers of
one endpoint do not all come back in the same instant), and the first success forgets the failures.

Pure: the clock reading and the random source are arguments, so the policy is tested without sleeping.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

BASE_SECONDS = 0.05  # the first wait after one failure: short, a single failure is often a fluke
CAP_SECONDS = 1.0  # small on purpose: once the load drops, an endpoint is tried again within a second


def backoff_delay(failures: int, rng: random.Random, *, base: float = BASE_SECONDS, cap: float = CAP_SECONDS) -> float:
    """Seconds to wait after `failures` consecutive failed handshakes (0 when there were none).

    The ceiling doubles with each failure up to `cap`; the delay is drawn from its upper half ("equal
    jitter"), so it is never zero (never "at once") and callers spread out.
    """
    if failures <= 0:
        return 0.0
    ceiling = min(cap, base * 2 ** min(failures - 1, 30))
    return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


@dataclass
class HandshakeBackoff:
    """The backoff state of one upstream endpoint."""

    base: float = BASE_SECONDS
    cap: float = CAP_SECONDS
    failures: int = 0
    retry_at: float = 0.0  # clock reading before which no new handshake starts

    def failed(self, now: float, rng: random.Random) -> float:
        """Note a failed handshake at `now`; returns the delay before the next one may start."""
        self.failures += 1
        delay = backoff_delay(self.failures, rng, base=self.base, cap=self.cap)
        self.retry_at = now + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.retry_at = 0.0

    def remaining(self, now: float) -> float:
        """Seconds until a new handshake may start (0 when it may start now)."""
        return max(0.0, self.retry_at - now)
