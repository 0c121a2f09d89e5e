"""Mutual TLS for sidecars: context builders, SPIFFE identity checks and handshake-error reasons.

Sidecars authenticate each other with mesh-issued certificates (see ca.py) over TLS 1.3. The
chain is checked by OpenSSL during the handshake; the *identity* is the SPIFFE ID in the
peer's URI SAN, checked right after the handshake (host names mean nothing in a mesh).
Handshake failures are reduced to short, stable reasons that end up in the access log and in
the `tls handshake failures by reason` counter, so a learner sees "certificate expired" rather
than an OpenSSL error string.
"""

from __future__ import annotations

import contextlib
import functools
import os
import ssl
import tempfile
from collections.abc import Collection, Iterator
from typing import Literal, Protocol

from cryptography import x509

from sandbox.mesh.controlplane.ca import WorkloadCertificate

# --------------------------------------------------------------------------- stable reasons

CERTIFICATE_EXPIRED = "certificate expired"
CERTIFICATE_NOT_YET_VALID = "certificate not yet valid"
UNKNOWN_CA = "unknown ca"
SPIFFE_ID_MISMATCH = "spiffe id mismatch"
NO_CLIENT_CERTIFICATE = "no client certificate"
PLAINTEXT_TO_MTLS_PORT = "plaintext sent to mTLS port"
TLS_TO_PLAINTEXT_PORT = "tls sent to plaintext port"
BAD_CERTIFICATE = "bad certificate"
PROTOCOL_VERSION = "protocol version"
HANDSHAKE_TIMEOUT = "handshake timeout"
CONNECTION_CLOSED = "connection closed during handshake"
CONNECTION_RESET = "connection reset"
HANDSHAKE_FAILED = "handshake failed"

REASONS: tuple[str, ...] = (
    CERTIFICATE_EXPIRED,
    CERTIFICATE_NOT_YET_VALID,
    UNKNOWN_CA,
    SPIFFE_ID_MISMATCH,
    NO_CLIENT_CERTIFICATE,
    PLAINTEXT_TO_MTLS_PORT,
    TLS_TO_PLAINTEXT_PORT,
    BAD_CERTIFICATE,
    PROTOCOL_VERSION,
    HANDSHAKE_TIMEOUT,
    CONNECTION_CLOSED,
    CONNECTION_RESET,
    HANDSHAKE_FAILED,
)

Side = Literal["client", "server"]


class PeerIdentityError(ssl.SSLError):
    """The handshake succeeded but the peer is not who we meant to talk to.

    A subclass of ssl.SSLError so code that treats "any TLS failure" alike still catches it.
    """

    def __init__(self, expected: Collection[str] | str, actual: str | None) -> None:
        wanted = [expected] if isinstance(expected, str) else sorted(expected)
        shown = actual if actual is not None else "no SPIFFE ID"
        super().__init__(f"{SPIFFE_ID_MISMATCH}: expected {' or '.join(wanted)}, got {shown}")
        self.reason = SPIFFE_ID_MISMATCH
        self.expected = wanted
        self.actual = actual

    def __str__(self) -> str:
        return str(self.args[0])


class _HasPeerCert(Protocol):
    def getpeercert(self, binary_form: bool = ...) -> object: ...


# --------------------------------------------------------------------------- contexts


@contextlib.contextmanager
def _pem_files(cert: WorkloadCertificate) -> Iterator[tuple[str, str]]:
    """Expose the certificate and key as file paths, which is all `ssl` can load them from.

    On Linux an anonymous memory file keeps the private key off the disk entirely; elsewhere
    (or without /proc) a private temporary directory that is removed at once.
    """
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fds = [os.memfd_create("mesh-cert"), os.memfd_create("mesh-key")]
        try:
            for fd, data in zip(fds, (cert.cert_pem, cert.key_pem)):
                os.write(fd, data)
            yield tuple(f"/proc/self/fd/{fd}" for fd in fds)  # type: ignore[misc]
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="mesh-tls-") as directory:
        paths = (os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem"))
        for path, data in zip(paths, (cert.cert_pem, cert.key_pem)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
                handle.write(data)
        yield paths


def _base_context(protocol: int, cert: WorkloadCertificate | None, root_pem: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    # Our certificates conform to RFC 5280, so let OpenSSL hold peers to it as well.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_verify_locations(cadata=root_pem.decode("ascii"))
    if cert is not None:
        with _pem_files(cert) as (cert_path, key_path):
            context.load_cert_chain(cert_path, key_path)
    return context


def server_context(cert: WorkloadCertificate, root_pem: bytes, *, require_client_cert: bool = True) -> ssl.SSLContext:
    """The inbound side. STRICT needs `require_client_cert=True`; with False a client without a
    certificate is let in (its identity is then None) but a presented one is still verified."""
    context = _base_context(ssl.PROTOCOL_TLS_SERVER, cert, root_pem)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    # Sidecar connections are long-lived and never resumed: skip sending session tickets.
    context.num_tickets = 0
    return context


def client_context(cert: WorkloadCertificate | None, root_pem: bytes) -> ssl.SSLContext:
    """The outbound side: present `cert` (None = a client without one, for the fault) and
    verify the server's chain against the mesh root. Host names are not checked: the peer's
    identity is its SPIFFE ID, checked with `check_peer_identity` after the handshake."""
    context = _base_context(ssl.PROTOCOL_TLS_CLIENT, cert, root_pem)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def looks_like_tls(first_bytes: bytes) -> bool:
    """Does a connection open with a TLS handshake record (PERMISSIVE mode's sniffing)?

    A TLS ClientHello starts with content type 22 (0x16) then major version 3; plaintext
    HTTP starts with a method name in ASCII letters. One byte is enough to tell them apart;
    a second byte, when there, is checked too.
    """
    if not first_bytes or first_bytes[0] != 0x16:
        return False
    return len(first_bytes) < 2 or first_bytes[1] == 0x03


# --------------------------------------------------------------------------- identity


@functools.lru_cache(maxsize=512)
def _spiffe_id_from_der(der: bytes) -> str | None:
    certificate = x509.load_der_x509_certificate(der)
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    spiffe = [uri for uri in uris if uri.startswith("spiffe://")]
    # An X509-SVID carries exactly one URI SAN; anything else is not a usable identity.
    if len(uris) != 1 or len(spiffe) != 1:
        return None
    return spiffe[0]


def peer_spiffe_id(ssl_object: _HasPeerCert | None) -> str | None:
    """The SPIFFE ID of the verified peer (ssl.SSLObject or ssl.SSLSocket), or None when the
    peer sent no certificate or its certificate carries no single SPIFFE URI SAN."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    return _spiffe_id_from_der(bytes(der))  # type: ignore[arg-type]


def check_peer_identity(ssl_object: _HasPeerCert | None, expected: str | Collection[str]) -> str:
    """Return the peer's SPIFFE ID if it is `expected` (or one of them); raise
    PeerIdentityError ("spiffe id mismatch: expected ..., got ...") otherwise."""
    actual = peer_spiffe_id(ssl_object)
    allowed = {expected} if isinstance(expected, str) else set(expected)
    if actual is None or actual not in allowed:
        raise PeerIdentityError(expected, actual)
    return actual


# --------------------------------------------------------------------------- classification

# OpenSSL X509_V_ERR_* codes seen when verifying a peer's chain.
_VERIFY_CODES = {
    9: CERTIFICATE_NOT_YET_VALID,
    10: CERTIFICATE_EXPIRED,
    2: UNKNOWN_CA,  # unable to get issuer certificate
    18: UNKNOWN_CA,  # self-signed certificate
    19: UNKNOWN_CA,  # self-signed certificate in chain
    20: UNKNOWN_CA,  # unable to get local issuer certificate
    21: UNKNOWN_CA,  # unable to verify the first certificate
}

# OpenSSL reason codes (ssl.SSLError.reason). Alerts are what the *other* side decided.
_SSL_REASONS = {
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": CERTIFICATE_EXPIRED,
    "TLSV1_ALERT_UNKNOWN_CA": UNKNOWN_CA,
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": NO_CLIENT_CERTIFICATE,
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": NO_CLIENT_CERTIFICATE,
    "HTTP_REQUEST": PLAINTEXT_TO_MTLS_PORT,
    "HTTPS_PROXY_REQUEST": PLAINTEXT_TO_MTLS_PORT,
    "SSLV3_ALERT_BAD_CERTIFICATE": BAD_CERTIFICATE,
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": BAD_CERTIFICATE,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": BAD_CERTIFICATE,
    "TLSV1_ALERT_DECRYPT_ERROR": BAD_CERTIFICATE,
    "UNSUPPORTED_PROTOCOL": PROTOCOL_VERSION,
    "TLSV1_ALERT_PROTOCOL_VERSION": PROTOCOL_VERSION,
    "NO_PROTOCOLS_AVAILABLE": PROTOCOL_VERSION,
}

# Bytes that are not a TLS record where one was expected. Which mistake it is depends on
# the side: a server got plaintext, or a client talked TLS to a plaintext server.
_NOT_TLS_REASONS = {"WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL"}


def classify_handshake_error(exc: BaseException, *, side: Side = "client") -> str:
    """Reduce a TLS failure to one of REASONS. `side` says which end saw `exc`, needed only to
    tell "plaintext sent to mTLS port" (server) from "tls sent to plaintext port" (client)."""
    if isinstance(exc, PeerIdentityError):
        return SPIFFE_ID_MISMATCH
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _VERIFY_CODES.get(getattr(exc, "verify_code", -1), BAD_CERTIFICATE)
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, EOFError, BrokenPipeError)):
        return CONNECTION_CLOSED
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or ""
        if reason in _SSL_REASONS:
            return _SSL_REASONS[reason]
        if reason in _NOT_TLS_REASONS:
            return PLAINTEXT_TO_MTLS_PORT if side == "server" else TLS_TO_PLAINTEXT_PORT
        if "UNEXPECTED_EOF" in reason or "EOF" in str(exc):
            return CONNECTION_CLOSED
        return HANDSHAKE_FAILED
    if isinstance(exc, TimeoutError):  # also asyncio.TimeoutError and socket.timeout
        return HANDSHAKE_TIMEOUT
    if isinstance(exc, ConnectionResetError):
        return CONNECTION_RESET
    if isinstance(exc, ConnectionError):
        return CONNECTION_CLOSED
    return HANDSHAKE_FAILED


def describe_handshake_error(exc: BaseException, *, side: Side = "client") -> str:
    """The stable reason followed by the library's own words, for access logs and details."""
    reason = classify_handshake_error(exc, side=side)
    text = getattr(exc, "verify_message", None) or str(exc) or type(exc).__name__
    return reason if text == reason or text.startswith(reason) else f"{reason} ({text})"


def send_tls_alerts_on_handshake_failure() -> None:
    """Make asyncio send the TLS alert when a handshake fails, as OpenSSL intends.

    CPython 3.11's SSLProtocol drops the connection without writing the alert OpenSSL queued, so
    the peer only sees "unexpected EOF" and cannot tell an unknown CA from an expired certificate.
    Writing the queued bytes first (the transport sends them at once when its buffer is empty)
    lets both ends log the same reason. Idempotent; only the failure branch changes.
    """
    from asyncio import sslproto

    if getattr(sslproto.SSLProtocol._do_handshake, "mesh_sends_alerts", False):
        return

    def _do_handshake(self) -> None:
        try:
            self._sslobj.do_handshake()
        except sslproto.SSLAgainErrors:
            self._process_outgoing()
        except ssl.SSLError as exc:
            try:
                self._process_outgoing()
            except Exception:
                pass
            self._on_handshake_complete(exc)
        else:
            self._on_handshake_complete(None)

    _do_handshake.mesh_sends_alerts = True
    sslproto.SSLProtocol._do_handshake = _do_handshake
