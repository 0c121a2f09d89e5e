"""The ASGI edge: a small pure ASGI middleware in front of Django, for what must happen before Django reads
a request.

- Request bodies. Django's ASGI handler reads the whole body (spooling it to a temporary file) before any
  middleware runs, and uvicorn sets no limit, so a cap checked by Django comes too late. Here a declared
  Content-Length over the path's cap is answered 413 at once, without reading the body; a body without a
  length (chunked) is counted as it arrives and, past the cap, answered 413 and read no further. The caps
  are the ones Django's own check uses (meshlearn.middleware.request_body_limit).
- Disconnects. It records the client's `http.disconnect` in an asyncio.Event under scope[DISCONNECTED], so a
  long response (the sandbox's live stream) can end, and free what it holds, as soon as its client goes.
"""

import asyncio

from .middleware import body_too_large_message, request_body_limit_for_path

DISCONNECTED = "meshlearn.disconnected"


class RequestEdge:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"][len(scope.get("root_path", "")) :] or "/"
        limit = request_body_limit_for_path(path)
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _refuse(send, 400, "The Content-Length header is not a number.")
                return
            if int(declared) > limit:
                # Answered before a byte of the body is read; the connection closes, so the rest is never read.
                await _refuse(send, 413, body_too_large_message(limit, int(declared)))
                return

        disconnected = asyncio.Event()
        scope[DISCONNECTED] = disconnected
        received = 0
        too_large = False
        started = False

        async def counted_receive():
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django sees the client go (it reads no further and answers nothing); the 413 is ours.
                    too_large = True
                    return {"type": "http.disconnect"}
            elif message["type"] == "http.disconnect":
                disconnected.set()
            return message

        async def tracked_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        finally:
            disconnected.set()  # whatever still waits on it: this request is over
        if too_large and not started:
            await _refuse(send, 413, body_too_large_message(limit))


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


async def _refuse(send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                # The body was not read (or not all of it): this connection cannot carry another request.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
