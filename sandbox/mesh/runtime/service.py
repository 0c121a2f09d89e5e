"""The demo workload: answers per its Behaviour and calls its dependencies through its sidecar.

Paths under /_mesh/ are its small admin API (behaviour, wiring, counters), for the experiment's
operator only: each call needs the operator token as a bearer token (and the sidecar's inbound never
forwards these paths). Everything else is "business" traffic. Run as a process with
`python -m sandbox.mesh.runtime.service --name b ...` (its secrets come on stdin from the supervisor).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from dataclasses import asdict, replace

from sandbox.mesh.config.model import Behaviour, Request, Response, UpstreamError
from sandbox.mesh.config.schema import parse_behaviour_patch
from sandbox.mesh.dataplane import http1
from sandbox.mesh.process import (
    announce,
    bearer_token,
    bind_listener,
    read_secrets,
    run_component,
    token_matches_digest,
)

ADMIN_PREFIX = "/_mesh/"


def behaviour_from_dict(data: dict, base: Behaviour = Behaviour()) -> Behaviour:  # noqa: B008 - frozen, so one shared default is safe
    """`base` with the changes of `data` ({latency_ms, error_rate, error_status, hang}, any subset),
    checked by the policy schema: the same bounds as a topology's `behaviour`, and "false" is no boolean."""
    return replace(base, **parse_behaviour_patch(data))


class ServiceApp:
    """One replica of a demo service."""

    def __init__(
        self,
        name: str,
        replica: int = 0,
        *,
        behaviour: Behaviour = Behaviour(),  # noqa: B008 - Behaviour is frozen
        calls: tuple[str, ...] = (),
        outbound_port: int | None = None,
        direct: dict[str, list[int]] | None = None,
        seed: int | None = None,
        admin_token_digest: str = "",
    ) -> None:
        self.name = name
        self.replica = replica
        self.behaviour = behaviour
        self.calls = tuple(calls)
        self._admin_token_digest = admin_token_digest  # "" = the admin API refuses everyone
        self.outbound_port = outbound_port  # our sidecar's outbound listener
        self.direct = dict(direct or {})  # without a sidecar: service -> app/inbound ports to call directly
        # Seeded per replica by default so an experiment's error pattern is reproducible.
        self.rng = random.Random(seed if seed is not None else f"{name}-{replica}")
        self.counts: dict[int, int] = {}
        self.server = http1.HttpServer(self._handle)
        self.port = 0
        self._pools: dict[int, http1.ConnectionPool] = {}
        self._released = asyncio.Event()  # set when the workload stops hanging: held requests go on

    # ------------------------------------------------------------------ lifecycle

    async def start(self, port: int = 0) -> int:
        self.port = await self.server.start(bind_listener(port))
        return self.port

    async def stop(self) -> None:
        self._released.set()
        for pool in self._pools.values():
            pool.close()
        await self.server.stop()

    # ------------------------------------------------------------------ requests

    async def _handle(self, request: Request, _writer: asyncio.StreamWriter) -> Response:
        if request.path.startswith(ADMIN_PREFIX):
            return self._admin(request)
        response = await self._serve(request)
        self.counts[response.status] = self.counts.get(response.status, 0) + 1
        return response

    async def _serve(self, request: Request) -> Response:
        behaviour = self.behaviour
        if behaviour.hang:
            self._released.clear()
            try:
                await asyncio.wait_for(self._released.wait(), 600)  # "never", but bounded so nothing leaks
            except TimeoutError:
                pass
        if behaviour.latency_ms > 0:
            await asyncio.sleep(behaviour.latency_ms / 1000)
        if behaviour.error_rate > 0 and self.rng.random() < behaviour.error_rate:
            return Response(
                behaviour.error_status, {"content-type": "text/plain"}, f"{self.name}: injected error\n".encode()
            )
        results = []
        for destination in self.calls:
            status, detail = await self._call(destination, request)
            results.append({"service": destination, "status": status})
            if not 200 <= status < 300:
                body = json.dumps({"service": self.name, "error": f"call to {destination} failed: {status} {detail}"})
                return Response(502, {"content-type": "application/json"}, body.encode())
        body = json.dumps({"service": self.name, "replica": self.replica, "calls": results})
        return Response(200, {"content-type": "application/json"}, body.encode())

    async def _call(self, destination: str, incoming: Request) -> tuple[int, str]:
        headers = {}
        if "traceparent" in incoming.headers:
            headers["traceparent"] = incoming.headers["traceparent"]
        outgoing = Request(method="GET", path="/", headers=headers)
        if self.outbound_port:
            port, host_header = self.outbound_port, destination
        else:
            ports = self.direct.get(destination) or []
            if not ports:
                return 503, f"no route to {destination}"
            port, host_header = self.rng.choice(ports), destination
        pool = self._pools.get(port)
        if pool is None:
            pool = self._pools[port] = http1.ConnectionPool("127.0.0.1", port)
        try:
            response = await pool.request(outgoing, host_header, timeout=30)
        except UpstreamError as exc:
            return 503, exc.reason
        except TimeoutError:
            return 504, "timeout"
        return response.status, response.headers.get("x-mesh-flags", "")

    # ------------------------------------------------------------------ admin

    def _admin(self, request: Request) -> Response:
        token = bearer_token(request.headers)
        if token is None:
            return Response(401, {"www-authenticate": "Bearer"}, b"the operator token is required\n")
        if not token_matches_digest(token, self._admin_token_digest):
            return Response(403, body=b"forbidden\n")
        what = request.path[len(ADMIN_PREFIX) :]
        try:
            if what == "behaviour" and request.method == "POST":
                self.behaviour = behaviour_from_dict(json.loads(request.body or b"{}"), self.behaviour)
                if not self.behaviour.hang:
                    self._released.set()
            elif what == "wiring" and request.method == "POST":
                data = json.loads(request.body or b"{}")
                if "outbound_port" in data:
                    self.outbound_port = data["outbound_port"]
                    for pool in self._pools.values():
                        pool.close()
                    self._pools.clear()
                if "direct" in data:
                    self.direct = {k: list(v) for k, v in data["direct"].items()}
            elif what not in ("behaviour", "stats"):
                return Response(404, body=b"unknown admin path\n")
        except (ValueError, TypeError) as exc:
            return Response(400, body=f"{exc}\n".encode())
        state = {
            "service": self.name,
            "replica": self.replica,
            "behaviour": asdict(self.behaviour),
            "requests": sum(self.counts.values()),
            "by_status": {str(k): v for k, v in self.counts.items()},
            "outbound_port": self.outbound_port,
        }
        return Response(200, {"content-type": "application/json"}, json.dumps(state).encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--replica", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--behaviour", default="{}", help="JSON Behaviour fields")
    parser.add_argument("--calls", default="", help="comma-separated services called per request")
    parser.add_argument("--outbound-port", type=int, default=0)
    parser.add_argument("--direct", default="{}", help="JSON service -> [ports] when there is no sidecar")
    args = parser.parse_args()
    secrets_doc = read_secrets()

    async def run(stop: asyncio.Event) -> None:
        app = ServiceApp(
            args.name,
            args.replica,
            behaviour=behaviour_from_dict(json.loads(args.behaviour)),
            calls=tuple(c for c in args.calls.split(",") if c),
            outbound_port=args.outbound_port or None,
            direct=json.loads(args.direct),
            admin_token_digest=secrets_doc["admin_token_digest"],
        )
        port = await app.start(args.port)
        announce(component="service", service=args.name, replica=args.replica, port=port)
        await stop.wait()
        await app.stop()

    run_component(run)


if __name__ == "__main__":
    main()
