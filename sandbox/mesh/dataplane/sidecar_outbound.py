"""The sidecar's outbound side: one connection pool per upstream endpoint, mTLS origination and the caller-side policy stack.

A part of `Sidecar` (sidecar.py), which holds the state these methods read."""

from __future__ import annotations

import asyncio
import time

from sandbox.mesh.config.flags import Flag
from sandbox.mesh.config.layer_errors import ConnectFailure
from sandbox.mesh.config.model import Endpoint, Request, Response, TrafficPolicy, UpstreamError
from sandbox.mesh.dataplane import http1, tls
from sandbox.mesh.dataplane.sidecar_state import (
    UPSTREAM_DRAIN_SECONDS,
    Applied,
)
from sandbox.mesh.dataplane.stack import DestinationState, outbound_stack


class OutboundSide:
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

    async def _outbound_request(self, request: Request, _writer: asyncio.StreamWriter) -> Response:
        applied = self.applied
        destination = (
            request.headers.get("host", "").rsplit(":", 1)[0]
            if ":" in request.headers.get("host", "")
            else request.headers.get("host", "")
        )
        request.destination = destination
        if applied is None:
            return Response(503, body=b"sidecar has no configuration yet\n", flags={Flag.NR})
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
                Flag.UO,
                f"sidecar overloaded: {admission.active} upstream requests in flight "
                f"(at most {admission.max_connections}), {admission.pending} waiting "
                f"(at most {admission.max_pending_requests})",
            )
        try:
            return await pool.request(request, endpoint.service)
        except http1.TlsConnectError as exc:
            reason = tls.classify_handshake_error(exc.original, side="client")
            self.telemetry.record_tls_failure(reason, direction="outbound", peer=endpoint.service)
            raise ConnectFailure(f"TLS error: {tls.describe_handshake_error(exc.original)}") from exc
        finally:
            admission.release()
