"""The sidecar proxy: one process beside each workload replica.

Three listeners on 127.0.0.1: inbound (terminates mTLS per the workload's mode, checks the peer,
applies authorization, forwards to the local app), outbound (the local app sends plain HTTP with
the destination service in the Host header; the sidecar applies the caller-side traffic policy and
originates mTLS to a peer's inbound) and admin (/metrics, /access-log, /ready, /config, /stats).
A long-lived JSON-lines connection to the control plane brings versioned config, which is
validated as a whole before it replaces the running one, then ACKed (or NACKed with the reason).

Identity: the sidecar makes its own private key and sends only a CSR (with its bootstrap token on
`hello`, and again at half-life on `renew`); the pushed certificate is used with the key that
matches it, which never left this process. The admin API answers /metrics and /ready to anyone on
loopback; everything else there needs the experiment's operator token as a bearer token.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import ssl

from sandbox.mesh.config.model import CircuitBreakerPolicy
from sandbox.mesh.config.schema import SchemaError
from sandbox.mesh.controlplane.meshconfig import sidecar_config_from_dict
from sandbox.mesh.dataplane import http1, tls
from sandbox.mesh.dataplane.layers.circuit_breaker import CircuitBreaker
from sandbox.mesh.dataplane.listener import Listener, ListenerLimits
from sandbox.mesh.dataplane.sidecar_admin import AdminApi
from sandbox.mesh.dataplane.sidecar_control import ControlChannel
from sandbox.mesh.dataplane.sidecar_inbound import InboundSide
from sandbox.mesh.dataplane.sidecar_keys import KeyRing, _certificate
from sandbox.mesh.dataplane.sidecar_outbound import OutboundSide
from sandbox.mesh.dataplane.sidecar_state import (
    APP_TIMEOUT,
    Applied,
    UpstreamLimits,
)
from sandbox.mesh.dataplane.stack import DestinationState, inbound_stack, no_route_stack
from sandbox.mesh.dataplane.telemetry import SidecarTelemetry
from sandbox.mesh.dataplane.tls import send_tls_alerts_on_handshake_failure
from sandbox.mesh.process import (
    announce,
    bind_listener,
    read_secrets,
    run_component,
)


class Sidecar(ControlChannel, OutboundSide, InboundSide, AdminApi):
    def __init__(
        self,
        service: str,
        replica: int,
        app_port: int,
        control_path: str,
        *,
        token: str,
        admin_token_digest: str,
        seed: int | None = None,
        limits: ListenerLimits | None = None,
        upstream_limits: UpstreamLimits | None = None,
    ) -> None:
        self.service = service
        self.replica = replica
        self.app_port = app_port
        self.app_timeout = APP_TIMEOUT
        self.control_path = control_path
        self._token = token  # bootstrap token: proves to the control plane which replica this is
        self._admin_token_digest = admin_token_digest
        self.keys = KeyRing()
        self.control_refusals = 0
        self.rng = random.Random(seed)
        self.telemetry = SidecarTelemetry(service)
        self.applied: Applied | None = None
        self.last_nack: dict | None = None
        self.ports: dict[str, int] = {}
        self.limits = limits or ListenerLimits()
        bounds = upstream_limits or UpstreamLimits()
        self.upstream_admission = CircuitBreaker(
            CircuitBreakerPolicy(max_connections=bounds.max_in_flight, max_pending_requests=bounds.max_pending)
        )
        self.outbound_handshakes = asyncio.Semaphore(bounds.max_tls_handshakes)
        self._inbound_handshakes = asyncio.Semaphore(bounds.max_inbound_handshakes)
        self.telemetry.admission = self.upstream_admission  # in /metrics: in flight, waiting, refused
        self._outbound_server = http1.HttpServer(self._outbound_request, limits=self.limits, name="outbound")
        self._admin_server = http1.HttpServer(self._admin_request, limits=self.limits, name="admin")
        self.inbound_listener: Listener | None = None
        self._inbound_connections: set[http1.ServerConnection] = set()
        self._tasks: list[asyncio.Task] = []
        self._conn_tasks: set[asyncio.Task] = set()
        self._upstream_pools: dict[tuple, http1.ConnectionPool] = {}
        self._closed_pool_handshakes = 0
        self.inbound_handshakes = 0  # TLS handshakes the inbound started (the cost an overload must not multiply)
        self._dest_states: dict[str, DestinationState] = {}
        self._no_route = no_route_stack(telemetry=self.telemetry)
        self._app_pool = http1.ConnectionPool("127.0.0.1", app_port)
        self._control_writer: asyncio.StreamWriter | None = None
        self._last_renew = 0.0
        self._cert_received = 0.0
        self.ready = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, inbound_port: int = 0, outbound_port: int = 0, admin_port: int = 0) -> dict[str, int]:
        self.inbound_listener = Listener(bind_listener(inbound_port), self._accept_inbound, self.limits, name="inbound")
        self.inbound_listener.start()
        self.ports["inbound"] = self.inbound_listener.port
        self.ports["outbound"] = await self._outbound_server.start(bind_listener(outbound_port))
        self.ports["admin"] = await self._admin_server.start(bind_listener(admin_port))
        self._tasks.append(asyncio.create_task(self._control_loop()))
        self._tasks.append(asyncio.create_task(self._rotation_loop()))
        return dict(self.ports)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.inbound_listener is not None:
            self.inbound_listener.close()
        for connection in list(self._inbound_connections):
            connection.transport.abort()
        for task in list(self._conn_tasks):
            task.cancel()
        await asyncio.gather(*self._conn_tasks, return_exceptions=True)
        await self._outbound_server.stop()
        await self._admin_server.stop()
        for pool in self._upstream_pools.values():
            pool.close()
        self._app_pool.close()
        if self._control_writer is not None:
            self._control_writer.close()

    def set_app_port(self, port: int) -> None:
        self.app_port = port
        self._app_pool.close()
        self._app_pool = http1.ConnectionPool("127.0.0.1", port)

    # ------------------------------------------------------------------ config

    def build(self, doc: dict) -> Applied:
        """Decode, validate and build everything for one pushed document, or raise SchemaError."""
        config = sidecar_config_from_dict(doc)
        cert = _certificate(config.certificate, self.keys.key_for(config.certificate["cert_pem"]))
        root = config.root_pem.encode()
        try:
            server_ssl = tls.server_context(cert, root, require_client_cert=True)
            permissive_ssl = tls.server_context(cert, root, require_client_cert=False)
            client_ssl = tls.client_context(cert, root)
        except (ssl.SSLError, ValueError) as exc:
            raise SchemaError("config.certificate", f"cannot be loaded ({exc})") from exc
        previous = self.applied.outbound if self.applied else {}
        outbound = {}
        for name, dest in config.destinations.items():
            kept = previous.get(name)
            if kept is not None and kept[0] == dest.traffic:
                outbound[name] = kept
            else:
                outbound[name] = (dest.traffic, self._make_outbound(name, dest.traffic))
        # The service's own traffic policy (pushed to every sidecar) carries the limit on its inbound.
        own = config.destinations.get(config.service)
        inbound = inbound_stack(
            authorization=config.authorization,
            forward=self._forward_to_app,
            telemetry=self.telemetry,
            rate_limit=own.traffic.rate_limit if own is not None else None,
        )
        return Applied(config, server_ssl, permissive_ssl, client_ssl, inbound, outbound)

    # ------------------------------------------------------------------ outbound

    # ------------------------------------------------------------------ inbound

    # ------------------------------------------------------------------ admin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--service", required=True)
    parser.add_argument("--replica", type=int, default=0)
    parser.add_argument("--app-port", type=int, required=True)
    parser.add_argument("--control-socket", required=True, help="the control plane's Unix socket")
    parser.add_argument("--inbound-port", type=int, default=0)
    parser.add_argument("--outbound-port", type=int, default=0)
    parser.add_argument("--admin-port", type=int, default=0)
    args = parser.parse_args()
    # Only a sidecar process patches asyncio; importing this module (a Celery worker does) changes nothing.
    send_tls_alerts_on_handshake_failure()
    # Secrets come on stdin, never in argv (which any local user can read in /proc).
    secrets_doc = read_secrets()

    async def run(stop: asyncio.Event) -> None:
        sidecar = Sidecar(
            args.service,
            args.replica,
            args.app_port,
            args.control_socket,
            token=secrets_doc["bootstrap_token"],
            admin_token_digest=secrets_doc["admin_token_digest"],
        )
        ports = await sidecar.start(args.inbound_port, args.outbound_port, args.admin_port)
        announce(component="sidecar", service=args.service, replica=args.replica, **ports)
        await stop.wait()
        await sidecar.stop()

    run_component(run)


if __name__ == "__main__":
    main()
