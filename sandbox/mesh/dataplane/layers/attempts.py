"""Attempt layer: notes each try of a request (status, flags, endpoint, the backoff before it, duration).

It sits just inside the retry layer, around the load balancer, so it sees every try and the endpoint the
balancer chose for it. The access-log record of the request carries the list, so a learner sees why a
request that ended in 200 took three tries.
"""

from __future__ import annotations

import asyncio

from sandbox.mesh.config.model import Clock, Handler, Request, Response


def attempt_layer(inner: Handler, *, clock: Clock) -> Handler:
    async def handle(request: Request) -> Response:
        tries = request.tries
        if tries is None:
            tries = request.tries = []
        start = clock()
        backoff = (start - tries[-1]["_end"]) * 1000 if tries else 0.0
        status, flags = 0, []
        try:
            response = await inner(request)
            status, flags = response.status, sorted(response.flags)
            return response
        except asyncio.CancelledError:
            flags = ["DC"]  # cut short (an overall timeout, the caller gone): this try got no answer
            raise
        finally:
            end = clock()
            endpoint = request.endpoint
            tries.append(
                {
                    "status": status,
                    "flags": flags,
                    "endpoint": f"{endpoint.host}:{endpoint.port}" if endpoint is not None else "",
                    "backoff_ms": round(backoff, 3),
                    "duration_ms": round((end - start) * 1000, 3),
                    "_end": end,
                }
            )

    return handle
