"""Inbound request targets: normalised before anything matches on them, and never the mesh's own admin paths.

The local application gets the normalised path (as Envoy forwards it with `normalize_path`), so the
authorization layer and the application agree on what was asked for. Paths under `/_mesh/` are the
demo workload's admin API (behaviour, wiring, counters): they are for the experiment's operator on
the workload's own port, never for a caller arriving through the data path.
"""

from __future__ import annotations

from sandbox.mesh.config.flags import Flag
from sandbox.mesh.config.model import Handler, Request, Response
from sandbox.mesh.dataplane.paths import PathRefused, normalize_path

RESERVED_PREFIX = "/_mesh/"


def inbound_path_layer(inner: Handler) -> Handler:
    async def handle(request: Request) -> Response:
        try:
            normalised = normalize_path(request.path)
        except PathRefused as exc:
            return Response(
                400,
                body=b"Bad Request: path cannot be normalised\n",
                flags={Flag.DPE},
                detail=f"path {request.path[:200]!r} refused: {exc}",
            )
        path = normalised.partition("?")[0]
        if path.startswith(RESERVED_PREFIX) or path == RESERVED_PREFIX.rstrip("/"):
            return Response(
                404,
                body=b"not found\n",
                flags={Flag.DPE},
                detail=f"{normalised[:200]!r} is the workload's admin API, not reachable through the mesh",
            )
        request.path = normalised
        return await inner(request)

    return handle
