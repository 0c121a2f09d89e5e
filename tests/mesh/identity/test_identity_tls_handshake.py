"""Real TLS 1.3 handshakes on a loopback socket pair, one per failure a learner can cause."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest
from identity_support import CLIENT_ID, SERVER_ID, run_handshake

from sandbox.mesh.dataplane import tls
from sandbox.mesh.dataplane.tls import (
    PeerIdentityError,
    check_peer_identity,
    classify_handshake_error,
    client_context,
    describe_handshake_error,
    looks_like_tls,
    peer_spiffe_id,
    server_context,
)


@pytest.fixture(scope="module")
def server_cert(ca):
    return ca.issue(SERVER_ID)


@pytest.fixture(scope="module")
def client_cert(ca):
    return ca.issue(CLIENT_ID)


def test_good_mtls_authenticates_both_sides_and_carries_data(ca, server_cert, client_cert):
    result = run_handshake(root_pem=ca.root_pem, server_cert=server_cert, client_cert=client_cert)
    assert result.client_error is None and result.server_error is None
    assert result.peer_seen_by_server == CLIENT_ID
    assert result.peer_seen_by_client == SERVER_ID
    assert result.reply == b"pong"


def test_expired_client_certificate_fails_with_certificate_expired(ca, server_cert):
    result = run_handshake(root_pem=ca.root_pem, server_cert=server_cert, client_cert=ca.issue_expired(CLIENT_ID))
    assert classify_handshake_error(result.server_error, side="server") == "certificate expired"
    # TLS 1.3: the client learns of it from the server's alert on its first read.
    assert classify_handshake_error(result.client_error, side="client") == "certificate expired"
    assert result.reply == b""


def test_expired_server_certificate_fails_with_certificate_expired(ca, client_cert):
    result = run_handshake(root_pem=ca.root_pem, server_cert=ca.issue_expired(SERVER_ID), client_cert=client_cert)
    assert classify_handshake_error(result.client_error, side="client") == "certificate expired"
    assert classify_handshake_error(result.server_error, side="server") == "certificate expired"
    assert describe_handshake_error(result.client_error).startswith("certificate expired (")
    assert "certificate has expired" in describe_handshake_error(result.client_error)


def test_foreign_ca_client_certificate_fails_with_unknown_ca(ca, server_cert):
    result = run_handshake(root_pem=ca.root_pem, server_cert=server_cert, client_cert=ca.issue_foreign(CLIENT_ID))
    assert classify_handshake_error(result.server_error, side="server") == "unknown ca"
    assert classify_handshake_error(result.client_error, side="client") == "unknown ca"
    assert result.peer_seen_by_server is None


def test_foreign_ca_server_certificate_fails_with_unknown_ca(ca, client_cert):
    result = run_handshake(root_pem=ca.root_pem, server_cert=ca.issue_foreign(SERVER_ID), client_cert=client_cert)
    assert classify_handshake_error(result.client_error, side="client") == "unknown ca"
    assert classify_handshake_error(result.server_error, side="server") == "unknown ca"


def test_no_client_certificate_against_strict_fails(ca, server_cert):
    result = run_handshake(root_pem=ca.root_pem, server_cert=server_cert, client_cert=None)
    assert classify_handshake_error(result.server_error, side="server") == "no client certificate"
    assert classify_handshake_error(result.client_error, side="client") == "no client certificate"
    assert result.reply == b""


def test_no_client_certificate_is_let_in_when_not_required(ca, server_cert):
    result = run_handshake(root_pem=ca.root_pem, server_cert=server_cert, client_cert=None, require_client_cert=False)
    assert result.server_error is None and result.client_error is None
    assert result.peer_seen_by_server is None  # no identity to authorize on
    assert result.reply == b"pong"


def test_optional_client_certificate_is_still_verified(ca, server_cert):
    result = run_handshake(
        root_pem=ca.root_pem,
        server_cert=server_cert,
        client_cert=ca.issue_foreign(CLIENT_ID),
        require_client_cert=False,
    )
    assert classify_handshake_error(result.server_error, side="server") == "unknown ca"


def test_wrong_spiffe_id_fails_the_identity_check_after_a_valid_handshake(ca, client_cert):
    impostor = ca.issue_wrong_identity(SERVER_ID)
    result = run_handshake(root_pem=ca.root_pem, server_cert=impostor, client_cert=client_cert)
    assert isinstance(result.client_error, PeerIdentityError)
    assert classify_handshake_error(result.client_error) == "spiffe id mismatch"
    assert str(result.client_error) == f"spiffe id mismatch: expected {SERVER_ID}, got {impostor.spiffe_id}"
    assert result.reply == b""  # the client refused to send anything to the impostor


def test_identity_check_accepts_any_of_several_expected_ids(ca, server_cert, client_cert):
    result = run_handshake(
        root_pem=ca.root_pem,
        server_cert=server_cert,
        client_cert=client_cert,
        expected_server_id=[CLIENT_ID, SERVER_ID],
    )
    assert result.peer_seen_by_client == SERVER_ID


def test_identity_check_without_a_peer_certificate():
    class NoPeer:
        def getpeercert(self, binary_form=False):
            return None

    assert peer_spiffe_id(NoPeer()) is None
    assert peer_spiffe_id(None) is None
    with pytest.raises(PeerIdentityError, match="got no SPIFFE ID"):
        check_peer_identity(NoPeer(), SERVER_ID)


def test_plaintext_to_an_mtls_port_is_named(ca, server_cert):
    server_sock, client_sock = socket.socketpair()
    server_sock.settimeout(5)
    try:
        client_sock.sendall(b"GET /health HTTP/1.1\r\nHost: b\r\n\r\n")
        with pytest.raises(ssl.SSLError) as caught:
            server_context(server_cert, ca.root_pem).wrap_socket(server_sock, server_side=True)
    finally:
        server_sock.close()
        client_sock.close()
    assert classify_handshake_error(caught.value, side="server") == "plaintext sent to mTLS port"


def test_tls_to_a_plaintext_port_is_named(ca, client_cert):
    server_sock, client_sock = socket.socketpair()
    client_sock.settimeout(5)

    def plaintext_server() -> None:
        server_sock.recv(4096)
        server_sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=plaintext_server)
    thread.start()
    try:
        with pytest.raises(ssl.SSLError) as caught:
            client_context(client_cert, ca.root_pem).wrap_socket(client_sock)
    finally:
        thread.join(5)
        server_sock.close()
        client_sock.close()
    assert classify_handshake_error(caught.value, side="client") == "tls sent to plaintext port"


def test_a_peer_that_hangs_up_mid_handshake(ca, client_cert):
    server_sock, client_sock = socket.socketpair()
    client_sock.settimeout(5)

    def hang_up() -> None:
        server_sock.recv(4096)
        server_sock.close()

    thread = threading.Thread(target=hang_up)
    thread.start()
    try:
        with pytest.raises((ssl.SSLError, OSError)) as caught:
            client_context(client_cert, ca.root_pem).wrap_socket(client_sock)
    finally:
        thread.join(5)
        client_sock.close()
    assert classify_handshake_error(caught.value) == "connection closed during handshake"


def test_tls_1_2_is_refused(ca, server_cert):
    old_client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old_client.maximum_version = ssl.TLSVersion.TLSv1_2
    old_client.check_hostname = False
    old_client.verify_mode = ssl.CERT_NONE
    server_sock, client_sock = socket.socketpair()
    server_sock.settimeout(5)
    client_sock.settimeout(5)
    errors = []

    def serve() -> None:
        try:
            server_context(server_cert, ca.root_pem).wrap_socket(server_sock, server_side=True)
        except ssl.SSLError as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with pytest.raises(ssl.SSLError):
            old_client.wrap_socket(client_sock)
    finally:
        thread.join(5)
        server_sock.close()
        client_sock.close()
    assert [classify_handshake_error(e, side="server") for e in errors] == ["protocol version"]


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (TimeoutError(), "handshake timeout"),
        (ConnectionResetError(), "connection reset"),
        (ValueError("weird"), "handshake failed"),
    ],
)
def test_non_tls_errors_get_stable_reasons(exc, reason):
    assert classify_handshake_error(exc) == reason
    assert reason in tls.REASONS


def test_contexts_speak_only_tls_1_3(ca, server_cert, client_cert):
    for context in (server_context(server_cert, ca.root_pem), client_context(client_cert, ca.root_pem)):
        assert context.minimum_version == ssl.TLSVersion.TLSv1_3
        assert context.verify_mode == ssl.CERT_REQUIRED
    assert server_context(server_cert, ca.root_pem, require_client_cert=False).verify_mode == ssl.CERT_OPTIONAL
    assert client_context(client_cert, ca.root_pem).check_hostname is False


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (b"\x16", True),
        (b"\x16\x03\x01\x02\x00", True),
        (b"\x16\x01", False),
        (b"GET / HTTP/1.1\r\n", False),
        (b"P", False),
        (b"", False),
    ],
)
def test_looks_like_tls(first, expected):
    assert looks_like_tls(first) is expected


def test_looks_like_tls_on_a_real_client_hello(ca, client_cert):
    # Capture the first bytes a real client sends, as a PERMISSIVE inbound would peek them.
    server_sock, client_sock = socket.socketpair()
    client_sock.settimeout(0.5)
    tls_client = client_context(client_cert, ca.root_pem).wrap_socket(client_sock, do_handshake_on_connect=False)
    try:
        with pytest.raises((ssl.SSLError, OSError)):
            tls_client.do_handshake()  # nobody answers; it times out after sending the hello
        first = server_sock.recv(5)
    finally:
        tls_client.close()
        server_sock.close()
    assert looks_like_tls(first)


def test_contexts_load_without_memfd_too(ca, server_cert, client_cert, monkeypatch):
    # Off Linux there is no memfd_create: the key goes through a private temporary file.
    monkeypatch.delattr("os.memfd_create")
    result = run_handshake(root_pem=ca.root_pem, server_cert=server_cert, client_cert=client_cert)
    assert result.peer_seen_by_server == CLIENT_ID and result.reply == b"pong"
