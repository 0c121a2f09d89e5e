"""Retry layer: retries failed tries with jittered exponential backoff, within a Linkerd-style budget.

The per-try timeout is not here: the stack wraps the handler this layer retries in a timeout
layer, so each try gets its own deadline (order is semantics).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sandbox.mesh.config.flags import Flag, Flags
from sandbox.mesh.config.layer_errors import RetriesExhausted
from sandbox.mesh.config.model import RETRY_CONDITIONS_IN_ORDER, Clock, Handler, Request, Response, RetryPolicy

# Answers made by this proxy that a retry cannot fix, or that must not be multiplied:
# an open breaker (UO), no healthy or known upstream (UH, NR), a policy refusal (RBAC),
# an injected fault (FI).
NEVER_RETRIED_FLAGS = Flags({Flag.UO, Flag.UH, Flag.NR, Flag.RBAC, Flag.FI})
# The retry_on conditions this mesh knows: the one list that topology files, pushed configs
# and this layer all check against (in the order messages list them).
RETRY_CONDITIONS = frozenset(RETRY_CONDITIONS_IN_ORDER)


class WindowedCounter:
    """A count of events over the last `window` seconds, kept in `slices` buckets (O(1) per call)."""

    def __init__(self, *, window: float, slices: int, clock: Clock) -> None:
        self._slice_seconds = window / slices
        self._counts = [0] * slices
        self._index = 0
        self._total = 0
        self._clock = clock
        self._slice_start = clock()

    def _advance(self) -> None:
        elapsed = self._clock() - self._slice_start
        if elapsed < self._slice_seconds:
            return
        steps = int(elapsed / self._slice_seconds)
        size = len(self._counts)
        if steps >= size:
            self._counts = [0] * size
            self._total = 0
        else:
            for _ in range(steps):
                self._index = (self._index + 1) % size
                self._total -= self._counts[self._index]
                self._counts[self._index] = 0
        self._slice_start += steps * self._slice_seconds

    def add(self, amount: int = 1) -> None:
        self._advance()
        self._counts[self._index] += amount
        self._total += amount

    def total(self) -> int:
        self._advance()
        return self._total


class RetryBudget:
    """Linkerd's (and Finagle's) retry budget: over the last `ttl` seconds, retries may number
    at most `ratio` x requests plus a reserve of `min_per_second` x `ttl`.

    It keeps retries from multiplying load when an upstream is failing for everyone: at 30%
    failures and low traffic every failure is retried; under heavy traffic only 20% extra.
    """

    def __init__(self, *, clock: Clock, ratio: float = 0.2, min_per_second: float = 10.0, ttl: float = 10.0) -> None:
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.ttl = ttl
        self._requests = WindowedCounter(window=ttl, slices=10, clock=clock)
        self._retries = WindowedCounter(window=ttl, slices=10, clock=clock)

    def deposit(self) -> None:
        """Count one original request (not a retry)."""
        self._requests.add()

    def balance(self) -> float:
        """How many retries may still be sent right now."""
        reserve = self.min_per_second * self.ttl
        return self._requests.total() * self.ratio + reserve - self._retries.total()

    def try_withdraw(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is spent."""
        if self.balance() < 1.0:
            return False
        self._retries.add()
        return True


def backoff_delay(retry_number: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Envoy's fully jittered exponential backoff for retry n (1, 2, ...):
    uniform in [0, (2**n - 1) * base), the upper bound capped at `cap`.
    With base 25 ms: 0-25 ms, 0-75 ms, 0-175 ms, then at most 250 ms."""
    ceiling = min(base * ((1 << min(retry_number, 30)) - 1), cap)
    return rng.random() * ceiling


def retry_condition(retry_on: frozenset[str]) -> Callable[[Response], bool]:
    """A predicate telling whether a response satisfies one of the `retry_on` conditions."""
    unknown = retry_on - RETRY_CONDITIONS
    if unknown:
        raise ValueError(f"unknown retry_on condition(s): {', '.join(sorted(unknown))}")
    on_5xx = "5xx" in retry_on
    on_gateway = "gateway-error" in retry_on
    on_connect = "connect-failure" in retry_on
    on_reset = "reset" in retry_on
    on_409 = "retriable-4xx" in retry_on

    def should_retry(response: Response) -> bool:
        status = response.status
        flags = response.flags
        if flags and not flags.isdisjoint(NEVER_RETRIED_FLAGS):
            return False
        if on_5xx and status >= 500:
            return True
        if on_gateway and status in (502, 503, 504):
            return True
        if on_connect and Flag.UF in flags:
            return True
        if on_reset and Flag.UC in flags:
            return True
        return on_409 and status == 409

    return should_retry


@dataclass
class RetryStats:
    """Counters the retry layer keeps for telemetry (they survive a policy push)."""

    retries: int = 0
    budget_exhausted: int = 0
    retries_exhausted: int = 0


def retry_layer(
    inner: Handler,
    policy: RetryPolicy,
    *,
    budget: RetryBudget,
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random,
    stats: RetryStats | None = None,
) -> Handler:
    """Retry `inner` up to `policy.attempts` times. Sets `request.attempt` before each try.

    When every retry was used and the last answer still qualifies, flag URX. When the budget
    refuses a retry, the last answer goes back as it is, with the reason in its detail.
    """
    if policy.attempts <= 0:
        return inner
    attempts = policy.attempts
    should_retry = retry_condition(policy.retry_on)
    base, cap = policy.backoff_base, policy.backoff_max
    stats = stats if stats is not None else RetryStats()

    async def handle(request: Request) -> Response:
        budget.deposit()
        request.attempt = 1
        response = await inner(request)
        if not should_retry(response):
            return response
        for retry_number in range(1, attempts + 1):
            if not budget.try_withdraw():
                stats.budget_exhausted += 1
                response.detail = _joined(response.detail, "retry budget exhausted")
                return response
            stats.retries += 1
            await sleep(backoff_delay(retry_number, base=base, cap=cap, rng=rng))
            request.attempt = retry_number + 1
            response = await inner(request)
            if not should_retry(response):
                return response
        stats.retries_exhausted += 1
        error = RetriesExhausted(attempts, last=response.error)
        response.flags = response.flags.added(error.flag)
        response.detail = _joined(response.detail, error.reason)
        response.error = error
        return response

    return handle


def _joined(detail: str, more: str) -> str:
    return f"{detail}; {more}" if detail else more
