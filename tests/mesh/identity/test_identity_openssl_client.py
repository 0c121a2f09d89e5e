"""A client nobody here wrote (`openssl s_client`) against a STRICT mesh TLS server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading

import pytest
from identity_support import CLIENT_ID, SERVER_ID

from sandbox.mesh.dataplane.tls import classify_handshake_error, peer_spiffe_id, server_context

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command line not installed")


class StrictGreeter:
    """Accepts up to `max_connections` mTLS connections on 127.0.0.1 and greets each verified
    peer by its SPIFFE ID. Records what the server saw; stops after a timeout in any case."""

    def __init__(self, context: ssl.SSLContext, *, max_connections: int, timeout: float = 10.0) -> None:
        self.context = context
        self.outcomes: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(timeout)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, args=(max_connections,))

    def _serve(self, max_connections: int) -> None:
        for _ in range(max_connections):
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # timed out or closed by stop()
            conn.settimeout(5)
            try:
                tls = self.context.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.outcomes.append(classify_handshake_error(exc, side="server"))
                conn.close()
                continue
            with tls:
                peer = peer_spiffe_id(tls)
                try:
                    tls.recv(64)
                    tls.sendall(f"hello {peer}\n".encode())
                    with contextlib.suppress(ssl.SSLError, OSError):
                        tls.unwrap()  # close_notify, so the client sees a clean end
                    self.outcomes.append(f"ok {peer}")
                except (ssl.SSLError, OSError) as exc:
                    self.outcomes.append(f"failed after handshake: {exc}")

    def __enter__(self) -> StrictGreeter:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.listener.close()
        self.thread.join(15)
        assert not self.thread.is_alive()


def s_client(port: int, workdir, *extra: str) -> subprocess.CompletedProcess:
    command = [
        "openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-tls1_3",
        "-CAfile",
        "root.pem",
        "-verify_return_error",
        "-brief",
        "-ign_eof",
        *extra,
    ]
    return subprocess.run(command, cwd=workdir, input=b"hi\n", capture_output=True, timeout=15)


@pytest.fixture
def pem_dir(ca, tmp_path):
    client = ca.issue(CLIENT_ID)
    (tmp_path / "root.pem").write_bytes(ca.root_pem)
    (tmp_path / "client.pem").write_bytes(client.cert_pem)
    (tmp_path / "client.key").write_bytes(client.key_pem)
    return tmp_path


def test_openssl_s_client_needs_a_mesh_certificate_to_get_through_strict(ca, pem_dir):
    context = server_context(ca.issue(SERVER_ID), ca.root_pem, require_client_cert=True)
    with StrictGreeter(context, max_connections=2) as server:
        without_cert = s_client(server.port, pem_dir)
        with_cert = s_client(server.port, pem_dir, "-cert", "client.pem", "-key", "client.key")

    # Without a certificate: openssl verifies our server fine, then gets the alert.
    assert b"Verification: OK" in without_cert.stderr
    assert b"certificate required" in without_cert.stderr
    assert b"hello" not in without_cert.stdout
    # With a mesh-issued certificate: through, and the server knows who it is.
    assert b"Verification: OK" in with_cert.stderr
    assert b"Protocol version: TLSv1.3" in with_cert.stderr
    assert with_cert.stdout == f"hello {CLIENT_ID}\n".encode()
    assert server.outcomes == ["no client certificate", f"ok {CLIENT_ID}"]


def test_openssl_s_client_with_a_foreign_certificate_is_refused(ca, pem_dir):
    foreign = ca.issue_foreign(CLIENT_ID)
    (pem_dir / "foreign.pem").write_bytes(foreign.cert_pem)
    (pem_dir / "foreign.key").write_bytes(foreign.key_pem)
    context = server_context(ca.issue(SERVER_ID), ca.root_pem, require_client_cert=True)
    with StrictGreeter(context, max_connections=1) as server:
        refused = s_client(server.port, pem_dir, "-cert", "foreign.pem", "-key", "foreign.key")
    assert b"unknown ca" in refused.stderr
    assert b"hello" not in refused.stdout
    assert server.outcomes == ["unknown ca"]
