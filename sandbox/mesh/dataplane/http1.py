"""HTTP/1.1 for the mesh on asyncio protocols: a bounded server and a keep-alive client pool.

Bytes are parsed by the sans-IO parsers of http1_parser (strict RFC 9112 framing); this module only
moves them. A server connection is an asyncio.Protocol that feeds its parser and runs one handler
task per request (pipelined requests wait their turn); a client connection is a Protocol whose
parser completes a future per response. No stream reader sits between the socket and the parser:
each hop handles a request in one pass over its bytes. Content-Length bodies both ways; chunked
request bodies are refused with 501 and chunked responses are read whole. Every listener is a
listener.Listener: capped, with read and idle timeouts, and able to survive a failed accept.
"""

from __future__ import annotations

from sandbox.mesh.config.model import Request, Response, UpstreamError
from sandbox.mesh.dataplane.http1_client import Connection, ConnectionPool, TlsConnectError, simple_request
from sandbox.mesh.dataplane.http1_parser import MAX_BODY_BYTES, MAX_HEADER_BYTES, ProtocolError
from sandbox.mesh.dataplane.http1_server import HttpServer, RequestHandler, ServerConnection
from sandbox.mesh.dataplane.http1_wire import HOP_BY_HOP, REASONS, encode_request, encode_response, wants_close
from sandbox.mesh.dataplane.listener import ListenerLimits

# The one name callers use for HTTP/1.1 (`http1.ConnectionPool`, `http1.simple_request`): its parts.
__all__ = [
    "HOP_BY_HOP",
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "REASONS",
    "Connection",
    "ConnectionPool",
    "HttpServer",
    "ListenerLimits",
    "ProtocolError",
    "Request",
    "RequestHandler",
    "Response",
    "ServerConnection",
    "TlsConnectError",
    "UpstreamError",
    "encode_request",
    "encode_response",
    "simple_request",
    "wants_close",
]
