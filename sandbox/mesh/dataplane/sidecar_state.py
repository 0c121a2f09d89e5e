"""What the parts of the sidecar share: its limits and timeouts, and the config it is running as one object."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from sandbox.mesh.config.model import TrafficPolicy
from sandbox.mesh.controlplane.meshconfig import SidecarConfig

HANDSHAKE_TIMEOUT = 5.0
SNIFF_TIMEOUT = 10.0
RENEW_RETRY_SECONDS = 5.0
APP_TIMEOUT = 15.0  # the longest a local app may take to answer (Envoy's default route timeout)
MODE_STRENGTH = {"DISABLE": 0, "PERMISSIVE": 1, "STRICT": 2}  # moving up closes connections the new mode refuses
OPEN_ADMIN_PATHS = ("/metrics", "/ready")  # read-only and harmless: scraped without the operator token
MAX_PENDING_KEYS = 4  # keys whose CSR is out and whose certificate has not come yet
# A request that timed out leaves its upstream connection this long to bring the late answer, then the
# connection serves again: cheaper than a new mTLS handshake, which is what a saturated box lacks most.
UPSTREAM_DRAIN_SECONDS = 5.0


@dataclass(frozen=True)
class UpstreamLimits:
    """What one sidecar takes on at once, whatever its destinations' policies say.

    A destination's circuit breaker is optional and per destination; without these, a burst opens as many
    upstream connections and TLS handshakes as callers send requests, until the process runs out of its 1,024
    files or its CPU goes to handshakes and every request times out together. Past the bounds a request gets
    503 UO at once (never retried, never held against an endpoint), and handshakes take turns, the wait
    counted in the connect timeout.
    """

    max_in_flight: int = 256  # upstream requests at once, every destination together (each holds 2 files)
    max_pending: int = 128  # more may wait for one of those places
    max_tls_handshakes: int = 16  # outbound handshakes at once: each is ~1 ms of CPU on a loaded core
    max_inbound_handshakes: int = 32  # handshakes the inbound runs at once; other clients wait, unread


@dataclass
class Applied:
    """Everything built from one config version; swapped in as one object so no request sees half of it."""

    config: SidecarConfig
    server_ssl: ssl.SSLContext
    permissive_ssl: ssl.SSLContext
    client_ssl: ssl.SSLContext
    inbound: object  # Handler
    outbound: dict[str, tuple[TrafficPolicy, object]]
