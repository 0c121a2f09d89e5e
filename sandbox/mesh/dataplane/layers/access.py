"""Access-log and metrics layer (outermost): times each request, propagates traceparent, records it."""

from __future__ import annotations

import asyncio

from sandbox.mesh.config.flags import Flag
from sandbox.mesh.config.model import Clock, Handler, Request, Response
from sandbox.mesh.dataplane.telemetry import SidecarTelemetry, trace_context


def access_layer(
    inner: Handler,
    *,
    telemetry: SidecarTelemetry,
    direction: str,
    clock: Clock,
    destination: str = "",
) -> Handler:
    """Give the request this hop's span (a new traceparent in its headers), call `inner`, and
    record status, flags, attempts and latency. If the caller goes away first (the task is
    cancelled), record status 0 with flag DC and let the cancellation go on."""
    rng = telemetry.rng
    wall_clock = telemetry.wall_clock
    record = telemetry.record_request

    async def handle(request: Request) -> Response:
        started = wall_clock()
        start = clock()
        traceparent, parent_span_id = trace_context(request.headers.get("traceparent"), rng)
        request.headers["traceparent"] = traceparent
        try:
            response = await inner(request)
        except asyncio.CancelledError:
            gone = Response(0, flags={Flag.DC}, detail="caller disconnected before the answer")
            record(
                direction=direction,
                request=request,
                response=gone,
                started=started,
                duration=clock() - start,
                traceparent=traceparent,
                parent_span_id=parent_span_id,
                destination=destination,
            )
            raise
        record(
            direction=direction,
            request=request,
            response=response,
            started=started,
            duration=clock() - start,
            traceparent=traceparent,
            parent_span_id=parent_span_id,
            destination=destination,
        )
        return response

    return handle
