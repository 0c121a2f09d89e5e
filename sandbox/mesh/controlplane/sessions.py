"""What the control plane keeps per sidecar replica and per service, and its tokens (compared in constant time)."""

from __future__ import annotations

import asyncio
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sandbox.mesh.controlplane.ca import (
    PublicKey,
    WorkloadCertificate,
)


def token_matches(given: object, expected: str) -> bool:
    """Constant-time comparison, so the time a refusal takes says nothing about the token."""
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class SidecarSession:
    service: str
    replica: int
    inbound_port: int
    writer: asyncio.StreamWriter | None = None
    pushed_version: int = 0
    acked_version: int = 0
    nack: dict | None = None  # {"version": n, "reason": "..."} of the last refusal
    certificate: WorkloadCertificate | None = None
    public_key: PublicKey | None = None  # from the sidecar's latest CSR; its private key never leaves the sidecar
    cert_fault: str | None = None  # the fault the current certificate was issued with
    renewals: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.service, self.replica)


@dataclass
class ServicePolicy:
    traffic: Any  # JSON form; may be invalid when pushed raw on purpose
    authorization: Any
    mtls_mode: str
    outbound_tls: bool = True
    sidecar: bool = True
