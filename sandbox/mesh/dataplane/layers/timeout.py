"""Timeout layer: answers 504 with flag UT when the wrapped handler takes longer than allowed.

Where it sits decides what it means: outside the retry layer it is the overall request
deadline (retries included), inside it it is the per-try timeout.
"""

from __future__ import annotations

import asyncio

from sandbox.mesh.config.layer_errors import RequestTimeout
from sandbox.mesh.config.model import Handler, Request, Response

TIMEOUT_BODY = b"upstream request timeout"


def timeout_layer(inner: Handler, seconds: float | None, *, scope: str = "request") -> Handler:
    """Wrap `inner` with a deadline of `seconds`; None means no deadline (returns `inner` itself).

    `scope` ("request" or "per-try") only labels the detail text a learner reads.
    """
    if seconds is None:
        return inner

    async def handle(request: Request) -> Response:
        try:
            # asyncio.timeout (3.11+) cancels the running task in place: no extra task per request.
            async with asyncio.timeout(seconds):
                return await inner(request)
        except TimeoutError:
            error = RequestTimeout(seconds, scope)
            return Response(504, body=TIMEOUT_BODY, flags={error.flag}, detail=error.reason, error=error)

    return handle
