"""Fault injection layer: delays (DI) and/or aborts (FI) a configured percentage of requests."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from sandbox.mesh.config.flags import Flag
from sandbox.mesh.config.model import FaultPolicy, Handler, Request, Response

ABORT_BODY = b"fault filter abort"


def fault_layer(
    inner: Handler,
    policy: FaultPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random,
) -> Handler:
    """Like Envoy's fault filter: the delay comes first, then the abort decision."""
    delay_fraction = policy.delay_percent / 100.0 if policy.delay_seconds > 0 else 0.0
    abort_fraction = policy.abort_percent / 100.0
    if delay_fraction <= 0 and abort_fraction <= 0:
        return inner
    delay_seconds = policy.delay_seconds
    abort_status = policy.abort_status
    abort_detail = f"fault injection: aborted with {abort_status} ({policy.abort_percent:g}% of requests)"

    async def handle(request: Request) -> Response:
        delayed = delay_fraction > 0 and rng.random() < delay_fraction
        if delayed:
            await sleep(delay_seconds)
        if abort_fraction > 0 and rng.random() < abort_fraction:
            response = Response(abort_status, body=ABORT_BODY, flags={Flag.FI}, detail=abort_detail)
        else:
            response = await inner(request)
        if delayed:
            response.flags = response.flags.added(Flag.DI)
        return response

    return handle
