"""The operator's side of the control socket: one op on a short connection, refused without the operator token."""

from __future__ import annotations

import asyncio
import json

REFUSED = "refused"  # all a caller without the right token learns


class OperatorRefused(PermissionError):
    """The control plane refused an operator request: the token was missing or wrong."""


async def operator_call(socket_path: str, message: dict, *, token: str, timeout: float = 5.0) -> dict:
    """One operator request on a short connection (the supervisor keeps its own long-lived one)."""
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(socket_path, limit=1 << 22), timeout)
    try:
        writer.write(json.dumps({"type": "op", **message, "token": token}).encode() + b"\n")
        line = await asyncio.wait_for(reader.readline(), timeout)
        reply = json.loads(line)
        if reply.get("type") == REFUSED:
            raise OperatorRefused("the control plane refused the operator token")
        return reply
    finally:
        writer.close()
