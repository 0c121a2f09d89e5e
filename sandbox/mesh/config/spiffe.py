"""SPIFFE IDs: the one place an identity `spiffe://<trust-domain>/ns/<namespace>/sa/<service>` is built and checked.

Plain strings and no `cryptography`, so the topology grammar and a demo service can check an ID without loading the CA.
"""

from __future__ import annotations

import re

# SPIFFE ID grammar (SPIFFE-ID spec section 2): lower-case trust domain, path segments of
# letters, digits, ".", "-", "_"; no query, fragment, port or user info.
_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]+$")
_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


class SpiffeIdError(ValueError):
    """A string that is not a valid SPIFFE ID."""


def validate_trust_domain(trust_domain: str) -> str:
    if not trust_domain or len(trust_domain) > 255 or not _TRUST_DOMAIN.match(trust_domain):
        raise SpiffeIdError(f"trust domain must be lower-case letters, digits, '.', '-' or '_', got {trust_domain!r}")
    return trust_domain


def parse_spiffe_id(spiffe_id: str) -> tuple[str, str]:
    """Split a SPIFFE ID into (trust domain, path), refusing anything the spec forbids."""
    prefix = "spiffe://"
    if not isinstance(spiffe_id, str) or not spiffe_id.startswith(prefix):
        raise SpiffeIdError(f"a SPIFFE ID starts with 'spiffe://', got {spiffe_id!r}")
    rest = spiffe_id[len(prefix) :]
    trust_domain, slash, path = rest.partition("/")
    validate_trust_domain(trust_domain)
    if not slash or not path:
        raise SpiffeIdError(f"a workload SPIFFE ID needs a path after the trust domain: {spiffe_id!r}")
    for segment in path.split("/"):
        if segment in ("", ".", "..") or not _PATH_SEGMENT.match(segment):
            raise SpiffeIdError(f"invalid path segment {segment!r} in {spiffe_id!r}")
    return trust_domain, "/" + path


def spiffe_id_for(trust_domain: str, namespace: str, service: str) -> str:
    """The Istio-style identity of a service's workloads."""
    spiffe_id = f"spiffe://{trust_domain}/ns/{namespace}/sa/{service}"
    parse_spiffe_id(spiffe_id)
    return spiffe_id


def wrong_spiffe_id(spiffe_id: str) -> str:
    """A valid identity in the same trust domain that is *not* `spiffe_id` (an impostor)."""
    trust_domain, path = parse_spiffe_id(spiffe_id)
    return f"spiffe://{trust_domain}{path}-impostor"
