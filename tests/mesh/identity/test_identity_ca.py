"""The mesh CA issues RFC 5280-conformant SPIFFE certificates that real verifiers accept."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from identity_support import CLIENT_ID, TRUST_DOMAIN

from sandbox.mesh.config.spiffe import SpiffeIdError, parse_spiffe_id, spiffe_id_for
from sandbox.mesh.controlplane.ca import (
    CertificateAuthority,
    CertificateRejected,
    WorkloadCertificate,
    needs_rotation,
    verify_workload_certificate,
)


def ext(cert: x509.Certificate, kind):
    return cert.extensions.get_extension_for_class(kind)


@pytest.fixture(scope="module")
def leaf(ca) -> WorkloadCertificate:
    return ca.issue(CLIENT_ID, ttl_seconds=600)


def client_verifier(ca, when=None):
    moment = when or dt.datetime.now(dt.UTC)
    return PolicyBuilder().store(Store([ca.root_cert])).time(moment).build_client_verifier()


# ------------------------------------------------------------------ root


def test_root_is_a_critical_ca_with_cert_sign_usage(ca):
    root = ca.root_cert
    constraints = ext(root, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = ext(root, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign and usage.value.crl_sign and not usage.value.digital_signature
    ski = ext(root, x509.SubjectKeyIdentifier)
    assert not ski.critical
    assert root.issuer == root.subject
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)


# ------------------------------------------------------------------ leaf


def test_leaf_san_is_exactly_the_spiffe_id_and_critical_because_subject_is_empty(leaf):
    cert = leaf.certificate
    assert cert.subject == x509.Name([])
    san = ext(cert, x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [CLIENT_ID]
    assert len(list(san.value)) == 1
    assert leaf.spiffe_id == CLIENT_ID


def test_leaf_extensions_follow_rfc5280(ca, leaf):
    cert = leaf.certificate
    constraints = ext(cert, x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.key_cert_sign and not usage.value.key_encipherment
    eku = ext(cert, x509.ExtendedKeyUsage)
    assert not eku.critical
    assert set(eku.value) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(ca.root_cert, x509.SubjectKeyIdentifier).value.digest
    assert ext(cert, x509.SubjectKeyIdentifier).value.digest != aki.key_identifier
    assert cert.issuer == ca.root_cert.subject
    assert 0 < cert.serial_number < 2**159


def test_leaf_lifetime_matches_the_requested_ttl(leaf):
    cert = leaf.certificate
    assert cert.not_valid_after_utc == leaf.not_after
    now = dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=590) <= leaf.not_after - now <= dt.timedelta(seconds=610)
    assert cert.not_valid_before_utc <= now


def test_each_issue_gets_a_fresh_key_and_serial(ca):
    first, second = ca.issue(CLIENT_ID), ca.issue(CLIENT_ID)
    assert first.key_pem != second.key_pem
    assert first.certificate.serial_number != second.certificate.serial_number


def test_chain_verifies_with_the_cryptography_verifier(ca, leaf):
    verified = client_verifier(ca).verify(leaf.certificate, [])
    assert verified.chain[-1] == ca.root_cert
    assert [name.value for name in verified.subjects] == [CLIENT_ID]
    assert verify_workload_certificate(leaf, ca.root_pem) == CLIENT_ID


@pytest.mark.parametrize("purpose", ["sslclient", "sslserver"])
def test_chain_verifies_with_openssl_verify(ca, leaf, tmp_path, purpose):
    (tmp_path / "root.pem").write_bytes(ca.root_pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.cert_pem)
    run = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-purpose", purpose, "-CAfile", "root.pem", "leaf.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "leaf.pem: OK"


def test_openssl_refuses_the_leaf_against_another_root(ca, leaf, tmp_path):
    (tmp_path / "other.pem").write_bytes(CertificateAuthority.create(TRUST_DOMAIN).root_pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.cert_pem)
    run = subprocess.run(
        ["openssl", "verify", "-CAfile", "other.pem", "leaf.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert run.returncode != 0
    assert "unable to get local issuer certificate" in run.stderr


# ------------------------------------------------------------------ faults on purpose


def test_expired_certificate_is_detected(ca, tmp_path):
    expired = ca.issue_expired(CLIENT_ID)
    assert expired.not_after < dt.datetime.now(dt.UTC)
    with pytest.raises(VerificationError, match="not valid at validation time"):
        client_verifier(ca).verify(expired.certificate, [])
    with pytest.raises(CertificateRejected):
        verify_workload_certificate(expired, ca.root_pem)
    (tmp_path / "root.pem").write_bytes(ca.root_pem)
    (tmp_path / "expired.pem").write_bytes(expired.cert_pem)
    run = subprocess.run(
        ["openssl", "verify", "-CAfile", "root.pem", "expired.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert run.returncode != 0 and "certificate has expired" in run.stderr


def test_foreign_ca_certificate_does_not_chain(ca):
    foreign = ca.issue_foreign(CLIENT_ID)
    # It claims the right identity and the same issuer name ...
    assert foreign.spiffe_id == CLIENT_ID
    assert foreign.certificate.issuer == ca.root_cert.subject
    # ... but was signed by another key.
    with pytest.raises(VerificationError):
        client_verifier(ca).verify(foreign.certificate, [])
    with pytest.raises(CertificateRejected):
        verify_workload_certificate(foreign, ca.root_pem)


def test_wrong_identity_certificate_chains_but_names_someone_else(ca):
    wrong = ca.issue_wrong_identity(CLIENT_ID)
    assert wrong.spiffe_id != CLIENT_ID
    verified = client_verifier(ca).verify(wrong.certificate, [])
    assert [name.value for name in verified.subjects] == [wrong.spiffe_id]
    assert parse_spiffe_id(wrong.spiffe_id)[0] == TRUST_DOMAIN


def test_verify_workload_certificate_rejects_a_mislabelled_certificate(ca):
    real = ca.issue(CLIENT_ID)
    mislabelled = WorkloadCertificate(
        cert_pem=real.cert_pem,
        key_pem=real.key_pem,
        spiffe_id=spiffe_id_for(TRUST_DOMAIN, "default", "somebody-else"),
        not_after=real.not_after,
    )
    with pytest.raises(CertificateRejected, match="expected exactly"):
        verify_workload_certificate(mislabelled, ca.root_pem)


# ------------------------------------------------------------------ rotation and time


def test_rotation_is_due_after_half_the_lifetime(ca):
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    cert = ca.issue(CLIENT_ID, ttl_seconds=3600, not_before=start)
    assert not needs_rotation(cert, start + dt.timedelta(minutes=29, seconds=59))
    assert needs_rotation(cert, start + dt.timedelta(minutes=30))
    assert not needs_rotation(cert, start + dt.timedelta(minutes=40), fraction=0.8)
    assert needs_rotation(cert, (start + dt.timedelta(minutes=48)).timestamp(), fraction=0.8)


def test_the_injected_clock_sets_validity(ca):
    fixed = dt.datetime(2031, 6, 1, 12, 0, tzinfo=dt.UTC)
    clocked = CertificateAuthority.create(TRUST_DOMAIN, clock=fixed.timestamp)
    cert = clocked.issue(CLIENT_ID, ttl_seconds=120)
    assert cert.certificate.not_valid_before_utc == fixed - dt.timedelta(seconds=60)
    assert cert.not_after == fixed + dt.timedelta(seconds=120)
    assert verify_workload_certificate(cert, clocked.root_pem, now=fixed) == CLIENT_ID
    with pytest.raises(CertificateRejected):
        verify_workload_certificate(cert, clocked.root_pem, now=fixed + dt.timedelta(seconds=121))


def test_ca_survives_a_round_trip_through_pem(ca):
    again = CertificateAuthority.from_pem(TRUST_DOMAIN, ca.root_pem, ca.root_key_pem)
    cert = again.issue(CLIENT_ID)
    assert verify_workload_certificate(cert, ca.root_pem) == CLIENT_ID


# ------------------------------------------------------------------ refusing bad input


@pytest.mark.parametrize(
    "bad",
    [
        "http://meshlearn.local/ns/default/sa/a",
        "spiffe://meshlearn.local",
        "spiffe://meshlearn.local/",
        "spiffe://MeshLearn.local/ns/default/sa/a",
        "spiffe://meshlearn.local/ns//sa/a",
        "spiffe://meshlearn.local/ns/default/sa/a?x=1",
        "spiffe://meshlearn.local:8443/ns/default/sa/a",
        "spiffe://meshlearn.local/ns/../sa/a",
    ],
)
def test_invalid_spiffe_ids_are_refused(ca, bad):
    with pytest.raises(SpiffeIdError):
        ca.issue(bad)


def test_ca_refuses_an_identity_of_another_trust_domain(ca):
    with pytest.raises(SpiffeIdError, match="trust domain"):
        ca.issue("spiffe://elsewhere.example/ns/default/sa/a")


@pytest.mark.parametrize("ttl", [0, -5, 10**9])
def test_unreasonable_ttls_are_refused(ca, ttl):
    with pytest.raises(ValueError):
        ca.issue(CLIENT_ID, ttl_seconds=ttl)


def test_each_workload_gets_its_own_cheap_p256_key(ca):
    # What keeps issuing around a millisecond (the shop's start time is measured in bench/):
    # an EC P-256 key per certificate, never an RSA key, never a key shared between workloads.
    issued = [ca.issue(CLIENT_ID) for _ in range(3)]
    keys = [leaf.certificate.public_key() for leaf in issued]
    assert all(isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1" for key in keys)
    assert len({key.public_numbers() for key in keys}) == 3
