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
import json
import random
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from sandbox.mesh.config.model import CircuitBreakerPolicy, Endpoint, Request, Response, TrafficPolicy, UpstreamError
from sandbox.mesh.controlplane.ca import WorkloadCertificate, make_csr, new_private_key_pem, public_key_der
from sandbox.mesh.controlplane.meshconfig import ConfigError, SidecarConfig, sidecar_config_from_dict
from sandbox.mesh.dataplane import http1, tls
from sandbox.mesh.dataplane.layers.circuit_breaker import CircuitBreaker
from sandbox.mesh.dataplane.listener import Listener, ListenerLimits, Slot
from sandbox.mesh.dataplane.stack import DestinationState, inbound_stack, no_route_stack, outbound_stack
from sandbox.mesh.dataplane.telemetry import SidecarTelemetry
from sandbox.mesh.process import (
    announce,
    bearer_token,
    bind_listener,
    read_secrets,
    run_component,
    token_matches_digest,
)

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


def send_tls_alerts_on_handshake_failure() -> None:
    """Make asyncio send the TLS alert when a handshake fails, as OpenSSL intends.

    CPython 3.11's SSLProtocol drops the connection without writing the alert OpenSSL queued, so
    the peer only sees "unexpected EOF" and cannot tell an unknown CA from an expired certificate.
    Writing the queued bytes first (the transport sends them at once when its buffer is empty)
    lets both ends log the same reason. Idempotent; only the failure branch changes.
    """
    from asyncio import sslproto

    if getattr(sslproto.SSLProtocol._do_handshake, "mesh_sends_alerts", False):
        return

    def _do_handshake(self) -> None:
        try:
            self._sslobj.do_handshake()
        except sslproto.SSLAgainErrors:
            self._process_outgoing()
        except ssl.SSLError as exc:
            try:
                self._process_outgoing()
            except Exception:
                pass
            self._on_handshake_complete(exc)
        else:
            self._on_handshake_complete(None)

    _do_handshake.mesh_sends_alerts = True
    sslproto.SSLProtocol._do_handshake = _do_handshake


@dataclass
class Applied:
    """Everything built from one config version; swapped in as one object so no request sees half of it."""

    config: SidecarConfig
    server_ssl: ssl.SSLContext
    permissive_ssl: ssl.SSLContext
    client_ssl: ssl.SSLContext
    inbound: object  # Handler
    outbound: dict[str, tuple[TrafficPolicy, object]]


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


def _is_refusal(line: bytes) -> bool:
    """The control plane's answer to a wrong bootstrap token (it then closes the connection)."""
    try:
        message = json.loads(line)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "refused"


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
        """The private key matching `cert_pem`, or ConfigError: a certificate for a key we never made."""
        from cryptography import x509

        try:
            public = public_key_der(x509.load_pem_x509_certificate(cert_pem.encode()).public_key())
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"config.certificate.cert_pem: not a PEM certificate ({exc})") from exc
        for der, key_pem in self._keys:
            if der == public:
                return key_pem
        raise ConfigError("config.certificate: its public key matches no private key this sidecar made")

    def forget_older_than(self, cert_pem: str) -> None:
        """Once a certificate is in use, keys older than its key are no longer needed."""
        key_pem = self.key_for(cert_pem)
        index = next(i for i, (_, pem) in enumerate(self._keys) if pem == key_pem)
        del self._keys[:index]


class Sidecar:
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
        """Decode, validate and build everything for one pushed document, or raise ConfigError."""
        config = sidecar_config_from_dict(doc)
        cert = _certificate(config.certificate, self.keys.key_for(config.certificate["cert_pem"]))
        root = config.root_pem.encode()
        try:
            server_ssl = tls.server_context(cert, root, require_client_cert=True)
            permissive_ssl = tls.server_context(cert, root, require_client_cert=False)
            client_ssl = tls.client_context(cert, root)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"config.certificate: cannot be loaded ({exc})") from exc
        previous = self.applied.outbound if self.applied else {}
        outbound = {}
        for name, dest in config.destinations.items():
            kept = previous.get(name)
            if kept is not None and kept[0] == dest.traffic:
                outbound[name] = kept
            else:
                outbound[name] = (dest.traffic, self._make_outbound(name, dest.traffic))
        inbound = inbound_stack(
            authorization=config.authorization, forward=self._forward_to_app, telemetry=self.telemetry
        )
        return Applied(config, server_ssl, permissive_ssl, client_ssl, inbound, outbound)

    def _make_outbound(self, name: str, policy: TrafficPolicy):
        def endpoints() -> list[Endpoint]:
            applied = self.applied
            dest = applied.config.destinations.get(name) if applied else None
            if dest is None:
                raise LookupError(name)
            return dest.endpoints

        # One state per destination survives rebuilds: a policy push keeps breaker, budget and ejections.
        state = self._dest_states.get(name)
        if state is None:
            state = self._dest_states[name] = DestinationState(name)
        return outbound_stack(
            policy=policy,
            endpoints=endpoints,
            send=self._send_upstream,
            clock=time.monotonic,
            sleep=asyncio.sleep,
            rng=self.rng,
            telemetry=self.telemetry,
            destination=name,
            state=state,
        )

    def apply(self, doc: dict) -> tuple[bool, str]:
        try:
            applied = self.build(doc)
        except (ConfigError, KeyError, TypeError, ValueError) as exc:
            self.last_nack = {"version": doc.get("version") if isinstance(doc, dict) else None, "reason": str(exc)}
            return False, str(exc)
        old = self.applied
        self.applied = applied
        self.keys.forget_older_than(applied.config.certificate["cert_pem"])
        if old is None or old.config.certificate != applied.config.certificate:
            self._cert_received = time.time()
            self._last_renew = 0.0
        if old is not None and old.config.certificate != applied.config.certificate:
            # New identity: connections made with the old certificate must not be reused.
            for pool in self._upstream_pools.values():
                self._closed_pool_handshakes += pool.handshakes
                pool.close()
            self._upstream_pools.clear()
        if old is not None and (
            old.config.certificate.get("fault") != applied.config.certificate.get("fault")
            or MODE_STRENGTH[applied.config.mtls_mode] > MODE_STRENGTH[old.config.mtls_mode]
        ):
            # A new (faulty or repaired) identity or a stricter mode must meet peers now, not whenever
            # their keep-alive connections close. A routine renewal only applies to new handshakes:
            # established connections drain, as in Envoy.
            for connection in list(self._inbound_connections):
                connection.transport.abort()
        self.ready.set()
        return True, ""

    async def _control_loop(self) -> None:
        delay = 0.05
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(self.control_path, limit=1 << 22)
            except OSError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            delay = 0.05
            self._control_writer = writer
            hello = {
                "type": "hello",
                "service": self.service,
                "replica": self.replica,
                "inbound_port": self.ports["inbound"],
                "token": self._token,
                "csr": self.keys.current_csr(),
            }
            writer.write(json.dumps(hello).encode() + b"\n")
            try:
                while line := await reader.readline():
                    if _is_refusal(line):
                        self.control_refusals += 1
                        delay = 1.0  # a wrong token stays wrong: ask again slowly
                        break
                    reply = self._control_reply(line)
                    if reply is not None:
                        writer.write(json.dumps(reply).encode() + b"\n")
            except (OSError, ValueError):
                pass  # connection lost (or an over-long line): reconnect and say hello again
            self._control_writer = None
            writer.close()
            await asyncio.sleep(delay)

    def _control_reply(self, line: bytes) -> dict | None:
        """The ACK or NACK for one control-plane line; a malformed one is refused, never fatal."""
        try:
            message = json.loads(line)
        except ValueError as exc:
            return self._refuse(None, f"control message is not JSON: {exc}")
        if not isinstance(message, dict):
            return self._refuse(None, "control message must be a JSON object")
        if message.get("type") != "config":
            return None
        version = message.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            return self._refuse(None, f"config message needs an integer version, got {version!r}")
        config = message.get("config")
        if not isinstance(config, dict):
            return self._refuse(version, "config message needs a config object")
        try:
            ok, reason = self.apply(config)
        except Exception as exc:  # a bug in building must not end the control loop
            ok, reason = False, f"config could not be applied: {exc!r}"
            self.last_nack = {"version": version, "reason": reason}
        reply = {"type": "ack" if ok else "nack", "version": version}
        if not ok:
            reply["reason"] = reason
        return reply

    def _refuse(self, version: int | None, reason: str) -> dict:
        self.last_nack = {"version": version, "reason": reason}
        return {"type": "nack", "version": version, "reason": reason}

    async def _rotation_loop(self) -> None:
        """Ask for a fresh certificate once half of its remaining validity (at receipt) has passed,
        as Istio rotates at half-life; ask again if no new one came within RENEW_RETRY_SECONDS."""
        while True:
            await asyncio.sleep(0.25)
            applied = self.applied
            if applied is None or self._control_writer is None:
                continue
            not_after = applied.config.certificate.get("not_after")
            if not_after is None:
                continue
            now = time.time()
            due = now >= self._cert_received + (float(not_after) - self._cert_received) * 0.5
            if due and now - self._last_renew >= RENEW_RETRY_SECONDS:
                self._last_renew = now
                renew = {"type": "renew", "csr": self.keys.new_csr()}
                self._control_writer.write(json.dumps(renew).encode() + b"\n")

    # ------------------------------------------------------------------ outbound

    async def _outbound_request(self, request: Request, _writer: asyncio.StreamWriter) -> Response:
        applied = self.applied
        destination = (
            request.headers.get("host", "").rsplit(":", 1)[0]
            if ":" in request.headers.get("host", "")
            else request.headers.get("host", "")
        )
        request.destination = destination
        if applied is None:
            return Response(503, body=b"sidecar has no configuration yet\n", flags={"NR"})
        entry = applied.outbound.get(destination)
        handler = entry[1] if entry is not None else self._no_route
        response = await handler(request)
        if response.flags:
            response.headers["x-mesh-flags"] = ",".join(sorted(response.flags))
        return response

    def _pool_for(self, endpoint: Endpoint, use_tls: bool, applied: Applied) -> http1.ConnectionPool:
        key = (endpoint.host, endpoint.port, use_tls, endpoint.spiffe_id)
        pool = self._upstream_pools.get(key)
        if pool is None:
            hook = None
            if use_tls:
                expected = endpoint.spiffe_id

                def hook(conn: http1.Connection) -> None:
                    try:
                        tls.check_peer_identity(conn.ssl_object, expected)
                    except tls.PeerIdentityError as exc:
                        raise http1.TlsConnectError(exc, str(exc)) from exc

            pool = http1.ConnectionPool(
                endpoint.host,
                endpoint.port,
                ssl_context=applied.client_ssl if use_tls else None,
                on_connect=hook,
                handshake_slots=self.outbound_handshakes,
                drain_timeout=UPSTREAM_DRAIN_SECONDS,
            )
            self._upstream_pools[key] = pool
        return pool

    def outbound_handshake_count(self) -> int:
        """Upstream connects (TLS handshakes where mTLS) started since this sidecar began, failed ones included."""
        return self._closed_pool_handshakes + sum(pool.handshakes for pool in self._upstream_pools.values())

    async def _send_upstream(self, request: Request) -> Response:
        applied = self.applied
        endpoint = request.endpoint
        dest = applied.config.destinations.get(endpoint.service)
        use_tls = bool(dest and dest.sidecar and applied.config.outbound_tls and endpoint.spiffe_id)
        pool = self._pool_for(endpoint, use_tls, applied)
        admission = self.upstream_admission
        if not admission.try_acquire() and not await admission.acquire():
            raise UpstreamError(
                "UO",
                f"sidecar overloaded: {admission.active} upstream requests in flight "
                f"(at most {admission.max_connections}), {admission.pending} waiting "
                f"(at most {admission.max_pending_requests})",
            )
        try:
            return await pool.request(request, endpoint.service)
        except http1.TlsConnectError as exc:
            reason = tls.classify_handshake_error(exc.original, side="client")
            self.telemetry.record_tls_failure(reason, direction="outbound", peer=endpoint.service)
            raise UpstreamError(
                "UF", f"TLS error: {tls.describe_handshake_error(exc.original)}", "connect-failure"
            ) from exc
        finally:
            admission.release()

    # ------------------------------------------------------------------ inbound

    def _accept_inbound(self, conn: socket.socket, slot: Slot) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.get_running_loop().create_task(self._inbound_connection(conn, slot))
        # The loop only keeps weak references to tasks: hold them, or a connection can vanish mid-request.
        self._conn_tasks.add(task)
        task.add_done_callback(self._conn_tasks.discard)
        # Until the HTTP connection takes the slot over, a slow sniff or handshake ends with the task; a task
        # cancelled before it ran never reached its own clean-up, so the socket is closed when it is done.
        slot.expire = lambda _reason: task.cancel()
        task.add_done_callback(lambda done: conn.close() if done.cancelled() else None)

    async def _peek(self, conn: socket.socket) -> bytes:
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        loop.add_reader(conn.fileno(), lambda: readable.done() or readable.set_result(None))
        try:
            await asyncio.wait_for(readable, SNIFF_TIMEOUT)
        finally:
            loop.remove_reader(conn.fileno())
        return conn.recv(2, socket.MSG_PEEK)

    async def _inbound_connection(self, conn: socket.socket, slot: Slot) -> None:
        try:
            await self._open_inbound(conn, slot)
        except asyncio.CancelledError:
            slot.release()
            conn.close()

    async def _open_inbound(self, conn: socket.socket, slot: Slot) -> None:
        loop = asyncio.get_running_loop()
        applied = self.applied
        if applied is None:
            slot.release()
            conn.close()
            return
        mode = applied.config.mtls_mode
        try:
            first = await self._peek(conn)
        except (TimeoutError, OSError):
            first = b""
        if not first:
            slot.release()
            conn.close()
            return
        use_tls = tls.looks_like_tls(first)
        if mode == "STRICT" and not use_tls:
            self._handshake_failed(tls.PLAINTEXT_TO_MTLS_PORT, "plaintext HTTP arrived at a STRICT mTLS port")
            slot.release()
            conn.close()
            return
        if mode == "DISABLE" and use_tls:
            # A plaintext port cannot answer a ClientHello: close at once, so the client fails fast instead of
            # waiting for a ServerHello that never comes.
            self._handshake_failed(tls.TLS_TO_PLAINTEXT_PORT, "a TLS handshake arrived at a DISABLE (plaintext) port")
            slot.release()
            conn.close()
            return
        context = applied.server_ssl if mode == "STRICT" else applied.permissive_ssl

        def opened(connection: http1.ServerConnection) -> None:
            if use_tls:
                connection.peer = tls.peer_spiffe_id(connection.get_extra_info("ssl_object")) or ""
                if mode == "STRICT" and not connection.peer:
                    self._handshake_failed(tls.NO_CLIENT_CERTIFICATE, "the client presented no SPIFFE identity")
                    connection.transport.abort()
                    return
            self._inbound_connections.add(connection)

        def protocol() -> http1.ServerConnection:
            return http1.ServerConnection(
                self._inbound_request, slot=slot, on_open=opened, on_close=self._inbound_closed
            )

        try:
            if use_tls:
                # Handshakes take turns: a burst of them at once would each take longer than its timeout on a
                # busy core, and all fail together. A waiting client is bounded by its slot's read timeout.
                async with self._inbound_handshakes:
                    self.inbound_handshakes += 1
                    await loop.connect_accepted_socket(
                        protocol, conn, ssl=context, ssl_handshake_timeout=HANDSHAKE_TIMEOUT
                    )
            else:
                await loop.connect_accepted_socket(protocol, conn)
        except (TimeoutError, ssl.SSLError, OSError, ConnectionError) as exc:
            self._handshake_failed(
                tls.classify_handshake_error(exc, side="server"), tls.describe_handshake_error(exc, side="server")
            )
            slot.release()
            conn.close()

    async def _inbound_request(self, request: Request, connection: http1.ServerConnection) -> Response:
        request.source_identity = connection.peer
        return await self.applied.inbound(request)

    def _inbound_closed(self, connection: http1.ServerConnection, exc: Exception | None) -> None:
        self._inbound_connections.discard(connection)
        if exc is not None:
            self._inbound_stream_error(exc)

    def _inbound_stream_error(self, exc: Exception) -> None:
        # TLS 1.3 checks the client certificate after the client thinks the handshake is done,
        # so a refused client certificate surfaces here, on the first read.
        if isinstance(exc, ssl.SSLError):
            self._handshake_failed(
                tls.classify_handshake_error(exc, side="server"), tls.describe_handshake_error(exc, side="server")
            )

    def _handshake_failed(self, reason: str, detail: str, peer: str = "") -> None:
        self.telemetry.record_tls_failure(reason, direction="inbound", peer=peer)

    async def _forward_to_app(self, request: Request) -> Response:
        # Only this sidecar may state the caller's identity: a plaintext caller could forge the header.
        request.headers.pop("x-forwarded-client-cert", None)
        if request.source_identity:
            request.headers["x-forwarded-client-cert"] = f"URI={request.source_identity}"
        try:
            return await self._app_pool.request(
                request, request.headers.get("host", self.service), timeout=self.app_timeout
            )
        except UpstreamError as exc:
            return Response(
                503, body=f"local app unreachable: {exc.reason}\n".encode(), flags={exc.flag}, detail=exc.reason
            )
        except TimeoutError:
            # Without a bound a hung app would hold this connection (and its task) for ever.
            return Response(
                504,
                body=b"local app timed out\n",
                flags={"UT"},
                detail=f"local app gave no response within {self.app_timeout:g}s",
            )

    # ------------------------------------------------------------------ admin

    def _readiness(self) -> Response:
        """Ready when configured and every data-path listener can take a connection now (not out of files)."""
        if self.applied is None:
            return Response(503, body=b"waiting for config\n")
        for healthy, why in (
            self.inbound_listener.healthy() if self.inbound_listener else (False, "not started"),
            self._outbound_server.healthy(),
        ):
            if not healthy:
                return Response(503, body=f"{why}\n".encode())
        return Response(200, body=b"ready\n")

    async def _admin_request(self, request: Request, _writer: asyncio.StreamWriter) -> Response:
        path = request.path.split("?", 1)[0]
        if path not in OPEN_ADMIN_PATHS:
            token = bearer_token(request.headers)
            if token is None:
                return Response(401, {"www-authenticate": "Bearer"}, b"the operator token is required\n")
            if not token_matches_digest(token, self._admin_token_digest):
                return Response(403, body=b"forbidden\n")
        if path == "/metrics":
            return Response(
                200,
                {"content-type": "text/plain; version=0.0.4; charset=utf-8"},
                self.telemetry.render_prometheus().encode(),
            )
        if path == "/access-log":
            # ?since=<seq> returns only records after that number (each record read once); ?limit=N the newest N.
            try:
                query = parse_qs(request.path.split("?", 1)[1] if "?" in request.path else "", strict_parsing=False)
                since = int(query["since"][0]) if "since" in query else None
                limit = int(query["limit"][0]) if "limit" in query else None
            except ValueError:
                return Response(400, body=b"since and limit must be whole numbers\n")
            records = self.telemetry.access_log(limit, since=since)
            return Response(
                200,
                {"content-type": "application/x-ndjson"},
                "".join(json.dumps(r.as_dict()) + "\n" for r in records).encode(),
            )
        if path == "/ready":
            return self._readiness()
        if path == "/config":
            applied = self.applied
            state = {
                "service": self.service,
                "replica": self.replica,
                "ports": self.ports,
                "app_port": self.app_port,
                "version": applied.config.version if applied else None,
                "mtls_mode": applied.config.mtls_mode if applied else None,
                "outbound_tls": applied.config.outbound_tls if applied else None,
                "spiffe_id": applied.config.certificate["spiffe_id"] if applied else None,
                "last_nack": self.last_nack,
            }
            return Response(200, {"content-type": "application/json"}, json.dumps(state).encode())
        if path == "/stats":
            applied = self.applied
            totals = {
                **self.telemetry.totals(),
                "outbound_handshakes": self.outbound_handshake_count(),
                "inbound_handshakes": self.inbound_handshakes,
                "mtls_mode": applied.config.mtls_mode if applied else None,
                "outbound_tls": applied.config.outbound_tls if applied else None,
            }
            return Response(200, {"content-type": "application/json"}, json.dumps(totals).encode())
        if path == "/app-port" and request.method == "POST":
            try:
                port = json.loads(request.body)["port"]
                if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
                    raise ValueError(f"port must be a number from 1 to 65535, got {port!r}")
            except (ValueError, KeyError, TypeError) as exc:
                return Response(400, body=f'expected {{"port": N}}: {exc}\n'.encode())
            self.set_app_port(port)
            return Response(200, body=b"ok\n")
        return Response(404, body=b"unknown admin path\n")


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
