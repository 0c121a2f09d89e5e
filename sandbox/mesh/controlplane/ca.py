"""The mesh's certificate authority: a root and short-lived SPIFFE workload certificates.

Each workload gets an X.509 certificate (an X509-SVID) whose only URI SAN is its SPIFFE ID,
``spiffe://<trust-domain>/ns/<namespace>/sa/<service>``. Extensions follow RFC 5280 and the
SPIFFE X509-SVID spec. Keys are EC P-256 so that issuing stays around a millisecond.

The fault-making helpers (an expired certificate, one from a foreign CA, one with the wrong
SPIFFE ID) exist so that a learner can break a handshake on purpose and see the real error.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sandbox.mesh.config.spiffe import SpiffeIdError, parse_spiffe_id, validate_trust_domain, wrong_spiffe_id

WallClock = Callable[[], float]  # seconds since the epoch; certificates live in wall time

ROOT_LIFETIME = dt.timedelta(days=365)
# The root is back-dated so that back-dated faults (an "expired" leaf) still sit inside
# the root's validity: their chain then fails for the reason we mean, not for another.
ROOT_BACKDATE = dt.timedelta(days=2)
# Leaves are back-dated a little so a peer whose clock is slightly behind accepts them.
LEAF_BACKDATE = dt.timedelta(seconds=60)
MAX_LEAF_TTL_SECONDS = 30 * 24 * 3600
LEAF_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True)
class WorkloadCertificate:
    """What a sidecar needs to speak mTLS as one identity: its certificate and private key."""

    cert_pem: bytes
    key_pem: bytes
    spiffe_id: str
    not_after: dt.datetime  # timezone-aware UTC
    not_before: dt.datetime | None = None  # timezone-aware UTC

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def _to_datetime(moment: float | dt.datetime) -> dt.datetime:
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            raise ValueError("datetimes must be timezone-aware (UTC)")
        return moment
    return dt.datetime.fromtimestamp(moment, tz=dt.UTC)


def needs_rotation(cert: WorkloadCertificate, now: float | dt.datetime, *, fraction: float = 0.5) -> bool:
    """True once `fraction` of the certificate's lifetime has passed (Istio rotates at half).

    Rotating well before expiry leaves room for a failed or slow renewal to be retried.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    now_dt = _to_datetime(now)
    not_before = cert.not_before or cert.certificate.not_valid_before_utc
    lifetime = cert.not_after - not_before
    return now_dt >= not_before + lifetime * fraction


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


# ---------------------------------------------------------------------- keys stay where they are made

PublicKey = ec.EllipticCurvePublicKey


class CsrRejected(ValueError):
    """A certificate signing request the CA will not sign; the message says why."""


def new_private_key_pem() -> bytes:
    """A fresh EC P-256 private key (PKCS#8 PEM), made by the workload that will use it."""
    return _key_pem(_new_key())


def make_csr(key_pem: bytes, spiffe_id: str | None = None) -> bytes:
    """A PEM CSR for `key_pem`'s public key, optionally asking for `spiffe_id` as its URI SAN.

    Only the public half and a signature proving possession of the private half leave the workload.
    """
    key = serialization.load_pem_private_key(key_pem, password=None)
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if spiffe_id:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]), critical=True
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def public_key_of_csr(csr_pem: bytes | str, spiffe_id: str) -> PublicKey:
    """The public key of a CSR that may be signed for `spiffe_id`, or CsrRejected.

    The identity comes from the caller's credentials, never from the CSR: a CSR that asks for any
    other identity (by URI SAN) is refused, as is one whose signature does not prove possession
    of its key or whose key is not P-256.
    """
    if isinstance(csr_pem, str):
        csr_pem = csr_pem.encode()
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except (ValueError, TypeError) as exc:
        raise CsrRejected(f"not a PEM certificate signing request ({exc})") from exc
    if not csr.is_signature_valid:
        raise CsrRejected("the CSR's signature does not match its public key")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CsrRejected("the CSR's key must be EC P-256")
    try:
        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = None
    if names is not None:
        claimed = [str(name.value) for name in names]
        if claimed != [spiffe_id]:
            raise CsrRejected(f"the CSR asks for {claimed}, but these credentials are for {spiffe_id!r}")
    return key


def public_key_der(key: PublicKey) -> bytes:
    """A stable name for a public key (to find which private key a certificate belongs to)."""
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class CertificateAuthority:
    """A self-signed root that issues workload certificates for one trust domain."""

    def __init__(
        self,
        trust_domain: str,
        root_key: ec.EllipticCurvePrivateKey,
        root_cert: x509.Certificate,
        *,
        clock: WallClock = time.time,
    ) -> None:
        self.trust_domain = validate_trust_domain(trust_domain)
        self._root_key = root_key
        self.root_cert = root_cert
        self.root_pem: bytes = root_cert.public_bytes(serialization.Encoding.PEM)
        self._clock = clock
        # Computed once: every leaf's AuthorityKeyIdentifier points at this.
        self._root_ski = root_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        self._aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(self._root_ski)

    # ------------------------------------------------------------------ construction

    @classmethod
    def create(
        cls, trust_domain: str, *, clock: WallClock = time.time, organization: str = "MeshLearn"
    ) -> CertificateAuthority:
        validate_trust_domain(trust_domain)
        key = _new_key()
        now = _to_datetime(clock())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{trust_domain} root CA"),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - ROOT_BACKDATE)
            .not_valid_after(now + ROOT_LIFETIME)
            # RFC 5280 4.2.1.9: basicConstraints MUST be critical in CA certificates.
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            # RFC 5280 4.2.1.3: keyUsage SHOULD be critical; a CA signs certificates and CRLs.
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            # RFC 5280 4.2.1.2: a CA certificate MUST carry a subject key identifier.
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(trust_domain, key, cert, clock=clock)

    @classmethod
    def from_pem(
        cls, trust_domain: str, root_pem: bytes, root_key_pem: bytes, *, clock: WallClock = time.time
    ) -> CertificateAuthority:
        """Rebuild a CA from its saved root (e.g. in a control-plane process)."""
        key = serialization.load_pem_private_key(root_key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the root key must be an EC key")
        return cls(trust_domain, key, x509.load_pem_x509_certificate(root_pem), clock=clock)

    @property
    def root_key_pem(self) -> bytes:
        return _key_pem(self._root_key)

    def now(self) -> dt.datetime:
        return _to_datetime(self._clock())

    # ------------------------------------------------------------------ issuing

    def issue(
        self,
        spiffe_id: str,
        *,
        ttl_seconds: float = 3600,
        not_before: float | dt.datetime | None = None,
        public_key: PublicKey | None = None,
    ) -> WorkloadCertificate:
        """Issue a leaf for `spiffe_id`, valid from `not_before` (default: now, back-dated a
        minute for clock skew) for `ttl_seconds`.

        With `public_key` (from a CSR) the certificate is for that key and `key_pem` is empty:
        the private key stays with whoever made it. Without, a key is made here (tests, tools)."""
        trust_domain, _ = parse_spiffe_id(spiffe_id)
        if trust_domain != self.trust_domain:
            raise SpiffeIdError(f"this CA signs for trust domain {self.trust_domain!r}, not {trust_domain!r}")
        return self._sign_leaf(spiffe_id, ttl_seconds=ttl_seconds, not_before=not_before, public_key=public_key)

    def _sign_leaf(
        self,
        spiffe_id: str,
        *,
        ttl_seconds: float,
        not_before: float | dt.datetime | None,
        public_key: PublicKey | None = None,
    ) -> WorkloadCertificate:
        if not 0 < ttl_seconds <= MAX_LEAF_TTL_SECONDS:
            raise ValueError(f"ttl_seconds must be in (0, {MAX_LEAF_TTL_SECONDS}], got {ttl_seconds}")
        start = self.now() - LEAF_BACKDATE if not_before is None else _to_datetime(not_before)
        # X.509 times have whole-second resolution; round so not_after matches the certificate.
        start = start.replace(microsecond=0)
        end = start + dt.timedelta(seconds=round(ttl_seconds))
        if not_before is None:
            end += LEAF_BACKDATE
        key = _new_key() if public_key is None else None
        subject_key = public_key if public_key is not None else key.public_key()
        cert = (
            x509.CertificateBuilder()
            # An empty subject, as Istio and SPIRE issue: the identity lives in the SAN alone.
            .subject_name(x509.Name([]))
            .issuer_name(self.root_cert.subject)
            .public_key(subject_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # EC keys in TLS 1.3 only sign (ECDHE does the key exchange with ephemeral keys).
            .add_extension(LEAF_KEY_USAGE, critical=True)
            # Every sidecar is both a server (inbound) and a client (outbound).
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            # RFC 5280 4.1.2.6: with an empty subject the SAN extension MUST be critical.
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key), critical=False)
            .add_extension(self._aki, critical=False)
            .sign(self._root_key, hashes.SHA256())
        )
        return WorkloadCertificate(
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=_key_pem(key) if key is not None else b"",
            spiffe_id=spiffe_id,
            not_after=cert.not_valid_after_utc,
            not_before=cert.not_valid_before_utc,
        )

    # ------------------------------------------------------------------ faults on purpose

    def issue_expired(
        self, spiffe_id: str, *, expired_seconds_ago: float = 3600, public_key: PublicKey | None = None
    ) -> WorkloadCertificate:
        """A correctly signed certificate whose validity ended `expired_seconds_ago`."""
        ttl = 3600
        start = self.now() - dt.timedelta(seconds=expired_seconds_ago + ttl)
        return self._sign_leaf(spiffe_id, ttl_seconds=ttl, not_before=start, public_key=public_key)

    def issue_wrong_identity(
        self, spiffe_id: str, *, ttl_seconds: float = 3600, public_key: PublicKey | None = None
    ) -> WorkloadCertificate:
        """A valid certificate from this CA for an identity that is not `spiffe_id`."""
        return self.issue(wrong_spiffe_id(spiffe_id), ttl_seconds=ttl_seconds, public_key=public_key)

    def issue_foreign(
        self, spiffe_id: str, *, ttl_seconds: float = 3600, public_key: PublicKey | None = None
    ) -> WorkloadCertificate:
        """A certificate for the right identity, signed by another CA of the same trust-domain
        name: it looks right but does not chain to this root."""
        return foreign_ca(self.trust_domain, clock=self._clock).issue(
            spiffe_id, ttl_seconds=ttl_seconds, public_key=public_key
        )


def foreign_ca(trust_domain: str, *, clock: WallClock = time.time) -> CertificateAuthority:
    """A fresh, unrelated CA with its own key but the very same name and trust domain, like a
    second cluster set up with the defaults: only the signature tells them apart."""
    return CertificateAuthority.create(trust_domain, clock=clock)


class CertificateRejected(ValueError):
    """A workload certificate that does not verify against the mesh root."""


def verify_workload_certificate(
    cert: WorkloadCertificate, root_pem: bytes, *, now: float | dt.datetime | None = None
) -> str:
    """Check `cert` chains to `root_pem`, is valid at `now`, is fit for client and server use
    and names exactly its SPIFFE ID; return that ID. A sidecar calls this before it swaps in
    a pushed certificate, so a bad one is rejected instead of breaking live connections."""
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    moment = _to_datetime(time.time() if now is None else now)
    leaf = cert.certificate
    roots = Store(x509.load_pem_x509_certificates(root_pem))
    try:
        verified = PolicyBuilder().store(roots).time(moment).build_client_verifier().verify(leaf, [])
    except VerificationError as exc:
        raise CertificateRejected(str(exc)) from exc
    uris = [name.value for name in verified.subjects or [] if isinstance(name, x509.UniformResourceIdentifier)]
    if uris != [cert.spiffe_id]:
        raise CertificateRejected(f"certificate names {uris}, expected exactly [{cert.spiffe_id!r}]")
    # The client verifier checked clientAuth; a sidecar also serves, so serverAuth must be there.
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    if ExtendedKeyUsageOID.SERVER_AUTH not in usages:
        raise CertificateRejected("certificate is not valid for serverAuth")
    return cert.spiffe_id
