"""Minimal HTTP/1.1 over asyncio streams: read/write requests and responses, keep-alive, a connection pool.

Only what the mesh needs: Content-Length bodies (chunked request bodies are refused with 501,
chunked response bodies are read simply), persistent connections, and an outbound pool of idle
connections per endpoint, plain or TLS. Kept small and allocation-light because every sidecar hop
parses each message twice.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Awaitable, Callable

from sandbox.mesh.model import Request, Response, UpstreamError
from sandbox.mesh.process import close_server

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024

REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
    404: "Not Found", 408: "Request Timeout", 413: "Payload Too Large", 429: "Too Many Requests",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 we can read; `status` is what to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """Split a message head into its first line and lower-cased headers (one decode, str ops)."""
    text = head[:-4].decode("latin-1")
    first, _, rest = text.partition("\r\n")
    headers: dict[str, str] = {}
    if rest:
        for line in rest.split("\r\n"):
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError("malformed header line")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length" and headers.get(name, value) != value:
                # Two lengths let two parsers split the stream differently (request smuggling).
                raise ProtocolError("conflicting Content-Length headers")
            headers[name] = value
    return first, headers


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The bytes up to the blank line, or None on a clean EOF between messages."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ProtocolError("connection closed inside the message head") from exc
    except asyncio.LimitOverrunError as exc:
        raise ProtocolError("message head too large", 431) from exc


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], *, allow_chunked: bool) -> bytes:
    if "transfer-encoding" in headers and "content-length" in headers:
        raise ProtocolError("both Content-Length and Transfer-Encoding")
    if "transfer-encoding" in headers and headers["transfer-encoding"].lower() != "identity":
        if not allow_chunked:
            raise ProtocolError("chunked request bodies are not supported", 501)
        return await _read_chunked(reader)
    length = headers.get("content-length")
    if length is None:
        return b""
    # int() would also take "+5", "1_0" or non-ASCII digits; RFC 9110 allows only 1*DIGIT.
    if not (length.isascii() and length.isdigit()):
        raise ProtocolError("bad Content-Length")
    size = int(length)
    if size > MAX_BODY_BYTES:
        raise ProtocolError("body too large", 413)
    return await reader.readexactly(size) if size else b""


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body, capped at MAX_BODY_BYTES; any framing fault is a ProtocolError."""
    parts = []
    total = 0
    try:
        while True:
            size_text = (await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0].strip()
            if not size_text or len(size_text) > 16 or not _HEX_DIGITS.issuperset(size_text):
                raise ProtocolError("bad chunk size")
            size = int(size_text, 16)
            total += size
            if total > MAX_BODY_BYTES:
                raise ProtocolError("chunked body too large", 413)
            if size == 0:
                trailer_bytes = 0
                while (line := await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers end with an empty line
                    trailer_bytes += len(line)
                    if trailer_bytes > MAX_HEADER_BYTES:
                        raise ProtocolError("chunked trailers too large", 431)
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                raise ProtocolError("chunk data not followed by CRLF")
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("connection closed inside a chunked body") from exc
    except asyncio.LimitOverrunError as exc:
        raise ProtocolError("chunk size line too long") from exc


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """Read one request; None when the client closed the connection between requests."""
    head = await _read_head(reader)
    if head is None:
        return None
    first, headers = _parse_head(head)
    parts = first.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ProtocolError("not an HTTP/1.x request line")
    # Most requests have no body: skip the body coroutine then.
    body = await _read_body(reader, headers, allow_chunked=False) \
        if "content-length" in headers or "transfer-encoding" in headers else b""
    if parts[2] == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
        headers.setdefault("connection", "close")
    return Request(method=parts[0], path=parts[1], headers=headers, body=body)


async def read_response(reader: asyncio.StreamReader, *, head_request: bool = False) -> Response:
    head = await _read_head(reader)
    if head is None:
        raise asyncio.IncompleteReadError(b"", None)
    first, headers = _parse_head(head)
    parts = first.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ProtocolError("not an HTTP/1.x status line")
    try:
        status = int(parts[1])
    except ValueError as exc:
        raise ProtocolError("bad status code") from exc
    try:
        body = b"" if head_request or status in (204, 304) else await _read_body(reader, headers, allow_chunked=True)
    except asyncio.IncompleteReadError as exc:
        # The head arrived, so this is not a stale keep-alive connection: never re-send it.
        raise ProtocolError("connection closed inside the response body") from exc
    headers.pop("transfer-encoding", None)
    return Response(status=status, headers=headers, body=body)


IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

# Hop-by-hop headers a proxy must not forward (RFC 9110 7.6.1), plus the length it recomputes.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)


def encode_request(request: Request, host: str) -> bytes:
    lines = [f"{request.method} {request.path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {len(request.body)}\r\n"]
    for name, value in request.headers.items():
        if name not in HOP_BY_HOP and name != "host":
            lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + request.body


def encode_response(response: Response, *, keep_alive: bool = True) -> bytes:
    reason = REASONS.get(response.status, "Unknown")
    lines = [f"HTTP/1.1 {response.status} {reason}\r\ncontent-length: {len(response.body)}\r\n"]
    for name, value in response.headers.items():
        if name not in HOP_BY_HOP:
            lines.append(f"{name}: {value}\r\n")
    if not keep_alive:
        lines.append("connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + response.body


def wants_close(headers: dict[str, str]) -> bool:
    return headers.get("connection", "").lower() == "close"


def tune_socket(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


RequestHandler = Callable[[Request, asyncio.StreamWriter], Awaitable[Response]]


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handle: RequestHandler,
    *,
    on_error: Callable[[Exception], None] | None = None,
) -> None:
    """Answer requests on one connection until the client closes it or asks to close."""
    tune_socket(writer)
    try:
        while True:
            try:
                request = await read_request(reader)
            except ProtocolError as exc:
                writer.write(encode_response(Response(exc.status, body=str(exc).encode()), keep_alive=False))
                break
            if request is None:
                break
            response = await handle(request, writer)
            keep = not wants_close(request.headers) and not wants_close(response.headers)
            writer.write(encode_response(response, keep_alive=keep))
            if writer.transport.get_write_buffer_size() > 65536:
                await writer.drain()
            if not keep:
                break
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError) as exc:
        if on_error is not None:
            on_error(exc)
    finally:
        await close_writer(writer)


async def close_writer(writer: asyncio.StreamWriter) -> None:
    try:
        if writer.transport.get_write_buffer_size():
            await asyncio.wait_for(writer.drain(), 1.0)
    except Exception:
        pass
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except Exception:
        pass


# --------------------------------------------------------------------------- outbound pool


class Connection:
    __slots__ = ("reader", "writer", "ssl_object")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.ssl_object = writer.get_extra_info("ssl_object")

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


ConnectHook = Callable[[Connection], None]  # raises to refuse a connection (e.g. wrong peer SPIFFE ID)


class ConnectionPool:
    """Keep-alive connections to one host:port, created on demand, reused when idle."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        on_connect: ConnectHook | None = None,
        connect_timeout: float = 2.0,
        max_idle: int = 256,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.on_connect = on_connect
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self.idle: list[Connection] = []
        self.open_count = 0
        self.closed = False

    async def _connect(self) -> Connection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl_context, server_hostname="" if self.ssl_context else None,
                    limit=MAX_HEADER_BYTES * 4,
                ),
                self.connect_timeout,
            )
        except asyncio.TimeoutError as exc:
            raise UpstreamError("UF", "connect timeout", "connect-failure") from exc
        except ssl.SSLError as exc:
            raise TlsConnectError(exc) from exc
        except (ConnectionError, OSError) as exc:
            raise UpstreamError("UF", f"connection failure: {exc.strerror or exc}", "connect-failure") from exc
        tune_socket(writer)
        conn = Connection(reader, writer)
        if self.on_connect is not None:
            try:
                self.on_connect(conn)
            except Exception:
                conn.close()
                raise
        self.open_count += 1
        return conn

    async def request(self, request: Request, host_header: str, *, timeout: float | None = None) -> Response:
        """Send one request and read its response; connection problems become UpstreamError."""
        data = encode_request(request, host_header)
        while self.idle:
            conn = self.idle.pop()
            if not conn.usable():
                self._discard(conn)
                continue
            try:
                return await self._exchange(conn, data, request.method, timeout)
            except _StaleConnection as exc:
                # The peer closed an idle keep-alive connection, most likely before it read our
                # request: clients resend that on a fresh connection, but only when sending twice
                # is harmless (RFC 9110 9.2.2). Otherwise the caller sees the reset.
                if request.method not in IDEMPOTENT_METHODS:
                    raise UpstreamError("UC", "upstream connection closed before the response", "reset") from exc
                continue
        conn = await self._connect()
        try:
            return await self._exchange(conn, data, request.method, timeout)
        except _StaleConnection as exc:
            raise UpstreamError("UC", "upstream connection closed before the response", "reset") from exc

    async def _exchange(self, conn: Connection, data: bytes, method: str, timeout: float | None) -> Response:
        try:
            conn.writer.write(data)
            if timeout is None:
                response = await read_response(conn.reader, head_request=method == "HEAD")
            else:
                response = await asyncio.wait_for(read_response(conn.reader, head_request=method == "HEAD"), timeout)
        except asyncio.IncompleteReadError as exc:
            self._discard(conn)
            if not exc.partial:
                raise _StaleConnection() from exc
            raise UpstreamError("UC", "upstream connection terminated mid-response", "reset") from exc
        except asyncio.TimeoutError:
            # Before OSError: since Python 3.11 a timeout is an OSError, and it is not a reset.
            self._discard(conn)
            raise
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            self._discard(conn)
            if isinstance(exc, ssl.SSLError):
                raise TlsConnectError(exc) from exc
            raise UpstreamError("UC", f"upstream reset: {exc}", "reset") from exc
        except asyncio.CancelledError:
            # A cancellation left a half-read exchange: the connection cannot be reused.
            self._discard(conn)
            raise
        except ProtocolError as exc:
            self._discard(conn)
            raise UpstreamError("UC", f"upstream protocol error: {exc}", "reset") from exc
        except BaseException:
            # Whatever else went wrong, a half-used connection must not stay open or go back to the pool.
            self._discard(conn)
            raise
        if wants_close(response.headers) or self.closed or len(self.idle) >= self.max_idle:
            self._discard(conn)
        else:
            self.idle.append(conn)
        return response

    def _discard(self, conn: Connection) -> None:
        self.open_count -= 1
        conn.close()

    def close(self) -> None:
        self.closed = True
        for conn in self.idle:
            conn.close()
        self.idle.clear()


class _StaleConnection(Exception):
    pass


class TlsConnectError(UpstreamError):
    """The TLS handshake (or the peer identity check) with the upstream failed."""

    def __init__(self, exc: BaseException, reason: str | None = None) -> None:
        self.original = exc
        text = reason or str(exc)
        super().__init__("UF", f"TLS error: {text}", "connect-failure")


async def simple_request(
    host: str, port: int, method: str = "GET", path: str = "/", *, headers: dict[str, str] | None = None,
    body: bytes = b"", timeout: float = 5.0, ssl_context: ssl.SSLContext | None = None,
) -> Response:
    """One request on a fresh connection (admin endpoints, tests)."""
    pool = ConnectionPool(host, port, ssl_context=ssl_context, connect_timeout=timeout)
    try:
        request = Request(method=method, path=path, headers=dict(headers or {}), body=body)
        return await asyncio.wait_for(pool.request(request, headers.get("host", f"{host}:{port}") if headers else f"{host}:{port}"), timeout)
    finally:
        pool.close()


class HttpServer:
    """An HTTP/1.1 listener on a given socket that can be stopped with all its connections."""

    def __init__(self, handle: RequestHandler) -> None:
        self.handle = handle
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, sock: socket.socket) -> int:
        self.server = await asyncio.start_server(self._on_connection, sock=sock, limit=MAX_HEADER_BYTES * 4)
        self.port = sock.getsockname()[1]
        return self.port

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            await serve_connection(reader, writer, self.handle)
        except asyncio.CancelledError:
            pass
        finally:
            self.writers.discard(writer)

    async def stop(self) -> None:
        if self.server is None:
            return
        await close_server(self.server, self.writers)
        self.server = None
