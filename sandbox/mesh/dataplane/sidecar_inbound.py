"""The sidecar's inbound side: sniffing TLS from plain text per the workload's mTLS mode, checking the peer, forwarding to the local app.

A part of `Sidecar` (sidecar.py), which holds the state these methods read."""

from __future__ import annotations

import asyncio
import socket
import ssl

from sandbox.mesh.config.flags import Flag
from sandbox.mesh.config.model import Request, Response, UpstreamError
from sandbox.mesh.dataplane import http1, tls
from sandbox.mesh.dataplane.listener import Slot
from sandbox.mesh.dataplane.sidecar_state import (
    HANDSHAKE_TIMEOUT,
    SNIFF_TIMEOUT,
)


class InboundSide:
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

    async def _sniffed_tls(self, conn: socket.socket, mode: str) -> bool | None:
        """Whether the connection opens with a TLS ClientHello; None when it must be closed (nothing came, or
        what came is refused by the workload's mTLS mode)."""
        try:
            first = await self._peek(conn)
        except (TimeoutError, OSError):
            first = b""
        if not first:
            return None
        use_tls = tls.looks_like_tls(first)
        if mode == "STRICT" and not use_tls:
            self._handshake_failed(tls.PLAINTEXT_TO_MTLS_PORT, "plaintext HTTP arrived at a STRICT mTLS port")
            return None
        if mode == "DISABLE" and use_tls:
            # A plaintext port cannot answer a ClientHello: close at once, so the client fails fast instead of
            # waiting for a ServerHello that never comes.
            self._handshake_failed(tls.TLS_TO_PLAINTEXT_PORT, "a TLS handshake arrived at a DISABLE (plaintext) port")
            return None
        return use_tls

    async def _open_inbound(self, conn: socket.socket, slot: Slot) -> None:
        loop = asyncio.get_running_loop()
        applied = self.applied
        if applied is None:
            slot.release()
            conn.close()
            return
        mode = applied.config.mtls_mode
        use_tls = await self._sniffed_tls(conn, mode)
        if use_tls is None:
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
                flags={Flag.UT},
                detail=f"local app gave no response within {self.app_timeout:g}s",
            )
