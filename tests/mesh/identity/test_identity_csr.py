"""Certificates signed from CSRs: the key is made by the workload, the identity comes from its credentials."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from identity_support import TRUST_DOMAIN

from sandbox.mesh.config.schema import SchemaError
from sandbox.mesh.controlplane.ca import (
    CsrRejected,
    make_csr,
    new_private_key_pem,
    public_key_der,
    public_key_of_csr,
    verify_workload_certificate,
)
from sandbox.mesh.dataplane.sidecar_keys import KeyRing, _certificate

B = f"spiffe://{TRUST_DOMAIN}/ns/default/sa/b"
A = f"spiffe://{TRUST_DOMAIN}/ns/default/sa/a"


def _public_der(key_pem: bytes) -> bytes:
    return public_key_der(serialization.load_pem_private_key(key_pem, password=None).public_key())


def test_a_csr_is_signed_for_its_key_and_the_ca_keeps_no_private_key(ca):
    key_pem = new_private_key_pem()
    cert = ca.issue(B, public_key=public_key_of_csr(make_csr(key_pem, B), B))
    assert cert.key_pem == b""
    assert public_key_der(cert.certificate.public_key()) == _public_der(key_pem)
    # With the workload's own key it is a whole, valid workload certificate.
    joined = _certificate({"cert_pem": cert.cert_pem.decode(), "spiffe_id": B, "not_after": None}, key_pem)
    assert verify_workload_certificate(joined, ca.root_pem) == B


def test_a_csr_without_a_san_gets_the_identity_of_the_credentials(ca):
    key_pem = new_private_key_pem()
    cert = ca.issue(B, public_key=public_key_of_csr(make_csr(key_pem), B))
    sans = cert.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(name.value) for name in sans] == [B]


def test_a_csr_asking_for_another_identity_is_refused():
    with pytest.raises(CsrRejected, match="asks for"):
        public_key_of_csr(make_csr(new_private_key_pem(), A), B)


def test_a_csr_asking_for_two_identities_is_refused():
    key = ec.generate_private_key(ec.SECP256R1())
    names = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(B), x509.UniformResourceIdentifier(A)])
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(names, critical=True)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    with pytest.raises(CsrRejected, match="asks for"):
        public_key_of_csr(csr, B)


@pytest.mark.parametrize(
    "key",
    [rsa.generate_private_key(public_exponent=65537, key_size=2048), ec.generate_private_key(ec.SECP384R1())],
    ids=["rsa", "p384"],
)
def test_a_csr_with_a_key_other_than_p256_is_refused(key):
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    with pytest.raises(CsrRejected, match="P-256"):
        public_key_of_csr(csr, B)


NOT_A_CSR = ["", "hello", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"]


@pytest.mark.parametrize("garbage", NOT_A_CSR)
def test_what_is_not_a_csr_is_refused(garbage):
    with pytest.raises(CsrRejected):
        public_key_of_csr(garbage, B)


def test_a_sidecar_refuses_a_certificate_for_a_key_it_never_made(ca):
    ring = KeyRing()
    ring.new_csr()
    stranger_cert = ca.issue(B)  # a valid certificate, but for someone else's key
    with pytest.raises(SchemaError, match="matches no private key"):
        ring.key_for(stranger_cert.cert_pem.decode())


def test_a_sidecar_finds_the_key_of_a_renewed_certificate_and_forgets_older_ones(ca):
    ring = KeyRing()
    first = ca.issue(B, public_key=public_key_of_csr(ring.new_csr(), B)).cert_pem.decode()
    second = ca.issue(B, public_key=public_key_of_csr(ring.new_csr(), B)).cert_pem.decode()
    assert ring.key_for(first) != ring.key_for(second)
    ring.forget_older_than(second)
    ring.key_for(second)
    with pytest.raises(SchemaError):
        ring.key_for(first)
