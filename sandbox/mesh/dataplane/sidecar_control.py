"""The sidecar's control channel: hello, versioned config applied whole then ACKed or NACKed, and certificate rotation.

A part of `Sidecar` (sidecar.py), which holds the state these methods read."""

from __future__ import annotations

import asyncio
import json
import time

from sandbox.mesh.config.schema import SchemaError
from sandbox.mesh.dataplane.sidecar_state import (
    MODE_STRENGTH,
    RENEW_RETRY_SECONDS,
)


def _is_refusal(line: bytes) -> bool:
    """The control plane's answer to a wrong bootstrap token (it then closes the connection)."""
    try:
        message = json.loads(line)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "refused"


class ControlChannel:
    def apply(self, doc: dict) -> tuple[bool, str]:
        try:
            applied = self.build(doc)
        except (SchemaError, KeyError, TypeError, ValueError) as exc:
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
