"""Shared helpers for the identity tests: test identities and a real TLS handshake on a socket pair."""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass

from sandbox.mesh.controlplane.ca import WorkloadCertificate
from sandbox.mesh.dataplane.tls import check_peer_identity, client_context, peer_spiffe_id, server_context

TRUST_DOMAIN = "meshlearn.local"
CLIENT_ID = f"spiffe://{TRUST_DOMAIN}/ns/default/sa/a"
SERVER_ID = f"spiffe://{TRUST_DOMAIN}/ns/default/sa/b"


@dataclass
class HandshakeResult:
    client_error: BaseException | None = None
    server_error: BaseException | None = None
    peer_seen_by_server: str | None = None
    peer_seen_by_client: str | None = None
    reply: bytes = b""


def run_handshake(
    *,
    root_pem: bytes,
    server_cert: WorkloadCertificate,
    client_cert: WorkloadCertificate | None,
    require_client_cert: bool = True,
    expected_server_id: str = SERVER_ID,
) -> HandshakeResult:
    """Handshake over a loopback socket pair, then exchange one message each way (server first).

    The server runs in a thread; both sockets have a timeout so a failure cannot hang the test.
    """
    result = HandshakeResult()
    server_sock, client_sock = socket.socketpair()
    server_sock.settimeout(5)
    client_sock.settimeout(5)

    def serve() -> None:
        tls = None
        try:
            tls = server_context(server_cert, root_pem, require_client_cert=require_client_cert).wrap_socket(
                server_sock, server_side=True
            )
            result.peer_seen_by_server = peer_spiffe_id(tls)
            tls.sendall(b"pong")
            tls.recv(16)
        except (ssl.SSLError, OSError) as exc:
            result.server_error = exc
        finally:
            (tls or server_sock).close()

    thread = threading.Thread(target=serve)
    thread.start()
    tls_client = None
    try:
        tls_client = client_context(client_cert, root_pem).wrap_socket(client_sock)
        result.peer_seen_by_client = check_peer_identity(tls_client, expected_server_id)
        # Read before writing: in TLS 1.3 the server judges the client's certificate after the
        # client's handshake is done, and its alert is only seen on the client's next read. A
        # write first could meet a closed socket (EPIPE) and hide the reason.
        result.reply = tls_client.recv(16)
        tls_client.sendall(b"ping")
    except (ssl.SSLError, OSError) as exc:
        result.client_error = exc
    finally:
        # Closing on error is what a sidecar does; it also frees the server thread.
        (tls_client or client_sock).close()
        thread.join(10)
    assert not thread.is_alive()
    return result
