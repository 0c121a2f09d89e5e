"""What both sides of HTTP/1.1 share: reason phrases, hop-by-hop headers, encoding a request or response."""

from __future__ import annotations

from sandbox.mesh.config.model import Request, Response

REASONS = {
    100: "Continue",
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Content Too Large",
    417: "Expectation Failed",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
POOL_IDLE_SECONDS = 30.0  # below the servers' idle timeout, so a pooled connection is not closed under us


IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

# Hop-by-hop headers a proxy must not forward (RFC 9110 7.6.1), plus the length it recomputes and the
# expectation it met itself (a client asking for 100 Continue got it from this hop).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "expect",
    }
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
    value = headers.get("connection")
    return value is not None and "close" in (token.strip() for token in value.lower().split(","))
