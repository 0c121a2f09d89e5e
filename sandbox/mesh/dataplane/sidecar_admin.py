"""The sidecar's admin API: /metrics and /ready for anyone on loopback, the rest for the experiment's operator.

A part of `Sidecar` (sidecar.py), which holds the state these methods read."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

from sandbox.mesh.config.model import Request, Response
from sandbox.mesh.dataplane.sidecar_state import (
    OPEN_ADMIN_PATHS,
)
from sandbox.mesh.process import (
    bearer_token,
    token_matches_digest,
)


class AdminApi:
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
            return self._access_log(request)
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
            return self._set_app_port(request)
        return Response(404, body=b"unknown admin path\n")

    def _access_log(self, request: Request) -> Response:
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

    def _set_app_port(self, request: Request) -> Response:
        try:
            port = json.loads(request.body)["port"]
            if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
                raise ValueError(f"port must be a number from 1 to 65535, got {port!r}")
        except (ValueError, KeyError, TypeError) as exc:
            return Response(400, body=f'expected {{"port": N}}: {exc}\n'.encode())
        self.set_app_port(port)
        return Response(200, body=b"ok\n")
