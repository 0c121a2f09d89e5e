"""Fixtures for the identity tests: one CA per module (EC keys are cheap, but not free)."""

from __future__ import annotations

import pytest
from identity_support import TRUST_DOMAIN

from sandbox.mesh.controlplane.ca import CertificateAuthority


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create(TRUST_DOMAIN)
