"""The sidecar's keys: private keys made here (never sent), CSRs for them, and a pushed certificate joined with its key."""

from __future__ import annotations

from sandbox.mesh.config.schema import SchemaError
from sandbox.mesh.controlplane.ca import WorkloadCertificate, make_csr, new_private_key_pem, public_key_der

MAX_PENDING_KEYS = 4  # keys whose CSR is out and whose certificate has not come yet


def _certificate(doc: dict, key_pem: bytes) -> WorkloadCertificate:
    """A pushed certificate document joined with the private key this process holds for it."""
    import datetime as dt

    def stamp(value: float | None) -> dt.datetime | None:
        return None if value is None else dt.datetime.fromtimestamp(float(value), tz=dt.UTC)

    return WorkloadCertificate(
        cert_pem=doc["cert_pem"].encode(),
        key_pem=key_pem,
        spiffe_id=doc["spiffe_id"],
        not_after=stamp(doc.get("not_after")),
        not_before=stamp(doc.get("not_before")),
    )


class KeyRing:
    """This sidecar's private keys: the one in use and those whose CSR awaits a certificate."""

    def __init__(self) -> None:
        self._keys: list[tuple[bytes, bytes]] = []  # (public key DER, private key PEM), oldest first

    def new_csr(self, spiffe_id: str | None = None) -> str:
        """Make a fresh key and return the CSR for it; the key stays here."""
        from cryptography.hazmat.primitives import serialization

        key_pem = new_private_key_pem()
        public = serialization.load_pem_private_key(key_pem, password=None).public_key()
        self._keys.append((public_key_der(public), key_pem))
        del self._keys[:-MAX_PENDING_KEYS]
        return make_csr(key_pem, spiffe_id).decode()

    def current_csr(self, spiffe_id: str | None = None) -> str:
        """A CSR for the newest key (a reconnect keeps its key, so its certificate stays good)."""
        if not self._keys:
            return self.new_csr(spiffe_id)
        return make_csr(self._keys[-1][1], spiffe_id).decode()

    def key_for(self, cert_pem: str) -> bytes:
        """The private key matching `cert_pem`, or SchemaError: a certificate for a key we never made."""
        from cryptography import x509

        try:
            public = public_key_der(x509.load_pem_x509_certificate(cert_pem.encode()).public_key())
        except (ValueError, TypeError) as exc:
            raise SchemaError("config.certificate.cert_pem", f"not a PEM certificate ({exc})") from exc
        for der, key_pem in self._keys:
            if der == public:
                return key_pem
        raise SchemaError("config.certificate", "its public key matches no private key this sidecar made")

    def forget_older_than(self, cert_pem: str) -> None:
        """Once a certificate is in use, keys older than its key are no longer needed."""
        key_pem = self.key_for(cert_pem)
        index = next(i for i, (_, pem) in enumerate(self._keys) if pem == key_pem)
        del self._keys[:index]
