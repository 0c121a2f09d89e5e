"""Innermost layer: turns a failed send (UpstreamError, socket errors) into a 503 with its flag.

Everything above it then deals in Responses only: the breaker frees its slot, outlier
detection counts the failure, the retry layer reads the flag (UF = connect-failure,
UC = reset) to decide.
"""

from __future__ import annotations

import asyncio

from sandbox.mesh.config.flags import Flag
from sandbox.mesh.config.layer_errors import ConnectFailure, UpstreamReset
from sandbox.mesh.config.model import Handler, Request, Response, UpstreamError
from sandbox.mesh.dataplane.layers.circuit_breaker import OVERFLOW_BODY

_BODIES = {
    Flag.UF: b"upstream connect error or disconnect/reset before headers. reset reason: connection failure",
    Flag.UC: b"upstream connect error or disconnect/reset before headers. reset reason: connection termination",
    Flag.UT: b"upstream request timeout",
    Flag.UO: OVERFLOW_BODY,
}


def error_response(error: UpstreamError) -> Response:
    """The answer the proxy gives for `error`: 504 for a timeout, else 503, the error kept on it."""
    flag = error.flag
    status = 504 if flag is Flag.UT else 503
    body = _BODIES.get(flag, b"upstream error")
    return Response(status, body=body, flags={flag}, detail=error.reason, error=error)


def upstream_errors_as_responses(send: Handler) -> Handler:
    async def handle(request: Request) -> Response:
        try:
            return await send(request)
        except UpstreamError as error:
            return error_response(error)
        except ConnectionRefusedError as error:
            return error_response(ConnectFailure(f"connection refused: {error}"))
        except (ConnectionError, asyncio.IncompleteReadError, EOFError) as error:
            return error_response(UpstreamReset(f"connection terminated: {error or type(error).__name__}"))
        except OSError as error:
            return error_response(ConnectFailure(f"connection failure: {error}"))

    return handle
