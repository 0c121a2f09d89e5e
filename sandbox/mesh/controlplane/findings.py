"""The analyzer's findings: each code with its severity and title, and the Finding a check reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    subject: str  # a service name, or "caller -> callee" for a call
    message: str


# code -> (severity, short title); the catalogue learners and the site can list.
FINDINGS: dict[str, tuple[Severity, str]] = {
    "MESH001": ("error", "STRICT service called by a workload without a sidecar"),
    "MESH002": ("error", "call to a service that does not exist"),
    "MESH003": ("warning", "retries can take longer than the request timeout"),
    "MESH004": ("warning", "retries under a request timeout without a per-try timeout"),
    "MESH005": ("warning", "outlier detection can eject every replica (healthy panic)"),
    "MESH006": ("warning", "outlier detection that can never eject"),
    "MESH007": ("warning", "authorization names an unknown source"),
    "MESH008": ("error", "call cycle"),
    "MESH009": ("warning", "authorization on a workload without a sidecar"),
    "MESH010": ("warning", "mTLS mode on a workload without a sidecar"),
    "MESH011": ("warning", "authorization refuses a caller the topology declares"),
    "MESH012": ("warning", "source-based authorization without mTLS"),
    "MESH013": ("info", "PERMISSIVE accepts plaintext"),
    "MESH014": ("info", "mTLS disabled between sidecars"),
    "MESH015": ("warning", "injected delay reaches the request timeout"),
    "MESH016": ("info", "fault injection is active"),
    "MESH017": ("info", "service receives no traffic"),
    "MESH018": ("warning", "retry budget of zero"),
    "MESH019": ("warning", "traffic policy not applied for a caller without a sidecar"),
    "MESH020": ("warning", "retries with no timeout at all"),
}


def _finding(code: str, subject: str, message: str, severity: Severity | None = None) -> Finding:
    return Finding(code, severity or FINDINGS[code][0], subject, message)
