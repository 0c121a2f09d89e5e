"""Reads a running mesh once per interval and turns its counters into per-interval snapshots.

Every sidecar's admin `/stats` carries cumulative counters per edge (requests by status and flags,
latency histogram buckets, retries, overflows, TLS failures by peer) and every app's `/_mesh/stats`
what it answered; `Observer.read()` fetches them all at once, and the deltas against the previous
reading make one interval's ServiceSnapshot and EdgeSnapshot lists. New access-log records come
through each sidecar's `since` cursor, so each is reported once. A replica that cannot be read is
reported as it is (alive or not, as its runtime says) and its counters are picked up again when it
answers; a restarted component starts its counters at zero, which counts as a reset, not a drop.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.mesh.config.flags import Flag, Flags
from sandbox.mesh.config.model import Behaviour, Topology
from sandbox.mesh.dataplane import http1
from sandbox.mesh.runtime.counts import _both_views, _success, quantile_ms
from sandbox.mesh.runtime.events import EdgeSnapshot, RequestRecord, ServiceSnapshot
from sandbox.mesh.runtime.observe_records import LOADGEN, RequestRecords
from sandbox.mesh.runtime.reading import Reading, SidecarReading

if TYPE_CHECKING:  # for the type only: the runtimes are imported when a mesh starts
    from sandbox.mesh.runtime.mesh_base import MeshBase

READ_TIMEOUT = 2.0


def edges_of(topology: Topology) -> list[tuple[str, str]]:
    """[source, destination] for every call in the topology, the load generator's entry edge first."""
    edges = [(LOADGEN, topology.entry)]
    for svc in topology.services:
        edges.extend((svc.name, callee) for callee in svc.calls if (svc.name, callee) not in edges)
    return edges


@dataclass
class _EdgeCounts:
    """One side's counts of an edge over an interval (the callee's inbound view, or the caller's outbound one)."""

    total: int = 0
    ok: int = 0
    identified: int = 0  # answers to a caller the callee's sidecar identified by its certificate
    tls: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    latency: list[int] = field(default_factory=list)
    bounds: list[float] = field(default_factory=list)
    retries: int = 0
    exhausted: int = 0
    overflows: int = 0
    circuit: str = "closed"
    ejected: set[str] = field(default_factory=set)

    def add(self, status: int | str, count: int) -> None:
        self.total += count
        self.ok += count if 200 <= int(status) < 300 else 0


class Observer(RequestRecords):
    def __init__(self, mesh: MeshBase, *, recent_limit: int = 50) -> None:
        self.mesh = mesh
        self.topology: Topology = mesh.topology
        self.recent_limit = recent_limit
        self.edges = edges_of(self.topology)
        self.names = {s.name for s in self.topology.services}
        self._prev_apps: dict[tuple[str, int], dict[str, int]] = {}
        self._cert_faults: dict[str, str] = {}
        self._prev_sidecars: dict[tuple[str, int], dict] = {}
        self._cursors: dict[tuple[str, int], int] = {}
        self._modes: dict[str, str] = {s.name: s.mtls_mode for s in self.topology.services}
        self._outbound_tls: dict[str, bool] = {s.name: True for s in self.topology.services}
        # Since the start of the run: what each service's replicas answered, and the sidecars' counters.
        self.actual: dict[str, dict[str, int]] = {s.name: {"requests": 0, "ok": 0} for s in self.topology.services}
        self.totals: dict[str, Any] = {
            "retries": 0,
            "ejections": 0,
            "tls_failures": 0,
            "uo": 0,
            "by_flag": {},
            "tls_reasons": {},
            "open_circuits": 0,
        }
        self._interval: dict[str, tuple[int, int]] = {}  # the last interval's (answered, 2xx) per service
        self._loadgen_seq = 0
        # One interval of memory for matching a refused handshake's two ends (see RequestRecords._recent).
        self._held_handshakes: list[tuple[float, str, str, RequestRecord]] = []
        self._caller_credit: dict[tuple[str, str], int] = {}
        self._callers: dict[str, set[str]] = {}
        for source, destination in self.edges:
            self._callers.setdefault(destination, set()).add(source)

    # ------------------------------------------------------------------ reading

    async def read(self) -> Reading:
        """Every live replica's app and sidecar counters, and its sidecar's new access-log records, at once."""
        reading = Reading()
        jobs, keys = [], []
        for (service, replica), rep in sorted(self.mesh.replicas.items()):
            if self.mesh.alive("service", service, replica):
                jobs.append(self._get_json(rep.app_port, "/_mesh/stats"))
                keys.append(("app", service, replica))
            else:
                reading.apps[(service, replica)] = None
                self._prev_apps.pop((service, replica), None)  # when it is back, it counts from zero
            if rep.sidecar:
                if self.mesh.alive("sidecar", service, replica):
                    jobs.append(self._read_sidecar(service, replica, rep.admin_port))
                    keys.append(("sidecar", service, replica))
                else:
                    reading.sidecars[(service, replica)] = None
                    self._prev_sidecars.pop((service, replica), None)
                    self._cursors.pop((service, replica), None)
        results = await asyncio.gather(self.mesh.status(), *jobs, return_exceptions=True)
        status, results = results[0], results[1:]
        if not isinstance(status, BaseException):
            self._cert_faults = dict(status.get("cert_faults", {}))
        reading.cert_faults = self._cert_faults  # the control plane down: what it last said
        for (kind, service, replica), result in zip(keys, results):
            value = None if isinstance(result, BaseException) else result
            (reading.apps if kind == "app" else reading.sidecars)[(service, replica)] = value
        return reading

    async def _get_json(self, port: int, path: str) -> Any:
        # The admin APIs answer the experiment's operator only.
        response = await http1.simple_request(
            "127.0.0.1", port, "GET", path, headers=self.mesh.admin_headers(), timeout=READ_TIMEOUT
        )
        if response.status != 200:
            raise OSError(f"{path}: {response.status}")
        return json.loads(response.body)

    async def _read_sidecar(self, service: str, replica: int, port: int) -> SidecarReading:
        stats = await self._get_json(port, "/stats")
        cursor = self._cursors.get((service, replica), 0)
        if stats.get("last_seq", 0) < cursor:
            cursor = 0  # a new sidecar process numbers its records from 1 again
        response = await http1.simple_request(
            "127.0.0.1",
            port,
            "GET",
            f"/access-log?since={cursor}&limit={self.recent_limit}",
            headers=self.mesh.admin_headers(),
            timeout=READ_TIMEOUT,
        )
        records = [json.loads(line) for line in response.body.decode().splitlines() if line.strip()]
        # Records after stats was read are numbered above its last_seq: they come next time, not twice.
        records = [r for r in records if r.get("seq", 0) <= stats.get("last_seq", 0)]
        self._cursors[(service, replica)] = max(cursor, stats.get("last_seq", 0))
        return SidecarReading(stats, records)

    # ------------------------------------------------------------------ deltas

    def _app_delta(self, key: tuple[str, int], stats: dict | None) -> dict[str, int]:
        if stats is None:
            return {}
        now = {str(k): int(v) for k, v in stats.get("by_status", {}).items()}
        before = self._prev_apps.get(key, {})
        if sum(now.values()) < sum(before.values()):
            before = {}  # a restarted app counts from zero
        self._prev_apps[key] = now
        return {
            status: count - before.get(status, 0) for status, count in now.items() if count - before.get(status, 0) > 0
        }

    def _sidecar_delta(self, key: tuple[str, int], stats: dict | None) -> dict | None:
        """This interval's counters of one sidecar: series, latency, retries, overflows, TLS failures."""
        if stats is None:
            return None
        now = _counters(stats)
        before = self._prev_sidecars.get(key)
        if before is None or now["seq"] < before["seq"]:
            before = _counters({})  # first reading, or a new sidecar process: its counters started at zero
        self._prev_sidecars[key] = now
        delta: dict[str, Any] = {}
        for part in ("series", "tls", "retries", "exhausted", "ejections", "overflows"):
            old = before[part]
            delta[part] = {k: v - old.get(k, 0) for k, v in now[part].items() if v - old.get(k, 0) > 0}
        delta["latency"] = {}
        for k, counts in now["latency"].items():
            old = before["latency"].get(k, [0] * len(counts))
            delta["latency"][k] = [max(0, a - b) for a, b in zip(counts, old)]
        delta["bounds"] = now["bounds"]
        delta["circuit"] = now["circuit"]
        delta["ejected"] = now["ejected"]
        return delta

    # ------------------------------------------------------------------ snapshot

    def snapshot(
        self,
        reading: Reading,
        elapsed: float,
        *,
        entry: dict,
        alive: dict[str, dict[str, bool]],
    ) -> tuple[list[ServiceSnapshot], list[EdgeSnapshot], list[RequestRecord]]:
        """Services, edges and new request records for one interval of `elapsed` seconds. `entry` is the
        load generator's view of the entry edge (rps, success, percentiles, flags, and optionally its
        `tls_failures` by reason and the `failures`: loadgen.Sample of requests whose connection failed)."""
        elapsed = max(elapsed, 1e-6)
        apps = {key: self._app_delta(key, stats) for key, stats in reading.apps.items()}
        sidecars = {key: self._sidecar_delta(key, r.stats if r else None) for key, r in reading.sidecars.items()}
        for (service, _replica), r in reading.sidecars.items():
            if r is not None:
                if r.stats.get("mtls_mode"):
                    self._modes[service] = r.stats["mtls_mode"]
                if r.stats.get("outbound_tls") is not None:
                    self._outbound_tls[service] = bool(r.stats["outbound_tls"])
        services = [
            self._service(svc, apps, sidecars, elapsed, reading.cert_faults, alive, reading)
            for svc in self.topology.services
        ]
        self._add_totals(sidecars)
        edges = [self._edge(source, destination, apps, sidecars, elapsed, entry) for source, destination in self.edges]
        return services, edges, self._recent(reading, sidecars, entry)

    def _service(self, svc, apps, sidecars, elapsed, cert_faults, alive, reading) -> ServiceSnapshot:
        total = ok = 0
        for replica in range(svc.replicas):
            for status, count in apps.get((svc.name, replica), {}).items():
                total += count
                ok += count if 200 <= int(status) < 300 else 0
        self.actual[svc.name]["requests"] += total
        self.actual[svc.name]["ok"] += ok
        self._interval[svc.name] = (total, ok)
        tls: dict[str, int] = {}
        for replica in range(svc.replicas):
            delta = sidecars.get((svc.name, replica))
            for (direction, _peer, reason), count in (delta or {}).get("tls", {}).items():
                if direction == "inbound":
                    tls[reason] = tls.get(reason, 0) + count
        faults = []
        for replica in range(svc.replicas):
            stats = reading.apps.get((svc.name, replica))
            text = _fault_text(stats.get("behaviour", {}), svc.behaviour) if stats else ""
            faults.append(text)
        if len(set(faults)) <= 1:
            fault = faults[0] if faults else ""
        else:
            fault = ", ".join(f"replica {i}: {text}" for i, text in enumerate(faults) if text)
        return ServiceSnapshot(
            name=svc.name,
            replicas=svc.replicas,
            rps=round(total / elapsed, 2),
            actual_success=_success(ok, total),
            mtls_mode=self._modes.get(svc.name, svc.mtls_mode) if svc.sidecar else "DISABLE",
            alive=alive.get(svc.name, {}),
            fault=fault,
            cert_fault=cert_faults.get(svc.name, ""),
            tls_failures=tls,
        )

    def _add_totals(self, sidecars: dict[tuple[str, int], dict | None]) -> None:
        totals = self.totals
        open_circuits = 0
        for delta in sidecars.values():
            if delta is None:
                continue
            totals["retries"] += sum(delta["retries"].values())
            totals["ejections"] += sum(delta["ejections"].values())
            open_circuits += sum(state == "open" for state in delta["circuit"].values())
            for (_direction, _src, _dst, _status, flag_text), count in delta["series"].items():
                for flag in Flags.parse(flag_text).in_order():
                    totals["by_flag"][flag] = totals["by_flag"].get(flag, 0) + count
            for (_direction, _peer, reason), count in delta["tls"].items():
                totals["tls_reasons"][reason] = totals["tls_reasons"].get(reason, 0) + count
                totals["tls_failures"] += count
        totals["uo"] = totals["by_flag"].get(Flag.UO, 0)
        totals["open_circuits"] = open_circuits

    def called_actual(self) -> float | None:
        """What the called services (all but the entry; the entry when it calls nobody) returned together in
        the last interval."""
        names = [s.name for s in self.topology.services]
        called = [n for n in names if n != self.topology.entry] or names
        total = sum(self._interval.get(n, (0, 0))[0] for n in called)
        ok = sum(self._interval.get(n, (0, 0))[1] for n in called)
        return _success(ok, total)

    def _edge(self, source, destination, apps, sidecars, elapsed, entry) -> EdgeSnapshot:
        callee = self.topology.service(destination)
        actual = self._callee_view(source, destination, apps, sidecars)
        if source == LOADGEN:
            tls = _both_views(entry.get("tls_failures", {}), actual.tls)
            mtls = actual.identified > 0 if actual.total else callee.sidecar and callee.mtls_mode != "DISABLE"
            return EdgeSnapshot(
                source=source,
                destination=destination,
                rps=round(entry["requests"] / max(elapsed, 1e-6), 2),
                effective_success=entry["success_rate"],
                actual_success=_success(actual.ok, actual.total),
                p50_ms=round(entry["p50_ms"], 3),
                p95_ms=round(entry["p95_ms"], 3),
                p99_ms=round(entry["p99_ms"], 3),
                tls_failures=tls,
                flags=entry.get("flags", {}),
                mtls=bool(mtls),
            )
        caller = self.topology.service(source)
        seen = self._caller_view(source, destination, sidecars)
        if actual.total and callee.sidecar:
            mtls = actual.identified > 0
        else:
            mtls = callee.sidecar and self._outbound_tls.get(source, True) and caller.sidecar
        latency, bounds = seen.latency, seen.bounds
        return EdgeSnapshot(
            source=source,
            destination=destination,
            rps=round(seen.total / max(elapsed, 1e-6), 2),
            effective_success=_success(seen.ok, seen.total),
            actual_success=_success(actual.ok, actual.total),
            p50_ms=round(quantile_ms(bounds, latency, 0.50), 3) if latency else 0.0,
            p95_ms=round(quantile_ms(bounds, latency, 0.95), 3) if latency else 0.0,
            p99_ms=round(quantile_ms(bounds, latency, 0.99), 3) if latency else 0.0,
            retries=seen.retries,
            retry_budget_exhausted=seen.exhausted,
            circuit=seen.circuit,
            pending_overflow=seen.overflows,
            ejected=sorted(seen.ejected),
            tls_failures=_both_views(seen.tls, actual.tls),
            flags=seen.flags,
            mtls=bool(mtls),
        )

    def _callee_view(self, source, destination, apps, sidecars) -> _EdgeCounts:
        """What the callee returned to this caller, every attempt counted (its inbound sidecar's view), and the
        handshakes it refused from it."""
        callee = self.topology.service(destination)
        only_caller = self._callers.get(destination) == {source}
        view = _EdgeCounts()
        for replica in range(callee.replicas):
            delta = sidecars.get((destination, replica))
            if delta is None:
                continue
            for (direction, src, dst, status, _flags), count in delta["series"].items():
                if direction != "inbound" or dst != destination:
                    continue
                mine = src == source or (source == LOADGEN and src not in self.names)
                if mine or (src == "unknown" and only_caller):
                    view.add(status, count)
                    view.identified += count if mine and src != "unknown" else 0
            for (direction, peer, reason), count in delta["tls"].items():
                if direction == "inbound" and (peer == source or (peer == "unknown" and only_caller)):
                    view.tls[reason] = view.tls.get(reason, 0) + count
        if not callee.sidecar:  # no inbound sidecar: what its app answered is all there is to see
            for replica in range(callee.replicas):
                for status, count in apps.get((destination, replica), {}).items():
                    view.add(status, count)
        return view

    def _caller_view(self, source, destination, sidecars) -> _EdgeCounts:
        """What the caller's sidecars saw of their calls to `destination`: answers, flags, latency, retries,
        the breaker and ejections, and the handshakes that failed."""
        view = _EdgeCounts()
        for replica in range(self.topology.service(source).replicas):
            delta = sidecars.get((source, replica))
            if delta is None:
                continue
            for (direction, _src, dst, status, flag_text), count in delta["series"].items():
                if direction == "outbound" and dst == destination:
                    view.add(status, count)
                    for flag in Flags.parse(flag_text).in_order():
                        view.flags[flag] = view.flags.get(flag, 0) + count
            counts = delta["latency"].get(("outbound", source, destination))
            if counts:
                view.latency = [a + b for a, b in zip(view.latency, counts)] if view.latency else list(counts)
                view.bounds = delta["bounds"]
            view.retries += delta["retries"].get(destination, 0)
            view.exhausted += delta["exhausted"].get(destination, 0)
            view.overflows += delta["overflows"].get(destination, 0)
            if delta["circuit"].get(destination) == "open":
                view.circuit = "open"
            view.ejected.update(self._endpoint_name(address) for address in delta["ejected"].get(destination, []))
            for (direction, peer, reason), count in delta["tls"].items():
                if direction == "outbound" and peer == destination:
                    view.tls[reason] = view.tls.get(reason, 0) + count
        return view

    def _endpoint_name(self, address: str) -> str:
        """ "127.0.0.1:40123" -> "b-1" (the replica whose inbound, or app when it has no sidecar, listens there)."""
        port = int(address.rsplit(":", 1)[1]) if ":" in address else -1
        for (service, replica), rep in self.mesh.replicas.items():
            if port in (rep.inbound_port, rep.app_port) and port:
                return f"{service}-{replica}"
        return address


def _counters(stats: dict) -> dict:
    """The cumulative counters of one sidecar's /stats, keyed for subtraction."""
    destinations = stats.get("destinations", {})
    now = stats.get("destinations_now", {})
    return {
        "seq": stats.get("last_seq", 0),
        "series": {tuple(row[:5]): row[5] for row in stats.get("series", [])},
        "latency": {tuple(row[:3]): row[3] for row in stats.get("latency", [])},
        "bounds": stats.get("latency_bounds", []),
        "tls": {tuple(row[:3]): row[3] for row in stats.get("tls_failures_by_peer", [])},
        "retries": {name: d.get("retries", 0) for name, d in destinations.items()},
        "exhausted": {name: d.get("retry_budget_exhausted", 0) for name, d in destinations.items()},
        "ejections": {name: d.get("ejections", 0) for name, d in destinations.items()},
        "circuit": {name: d.get("circuit", "none") for name, d in destinations.items()},
        "overflows": {name: d.get("overflows", 0) for name, d in now.items()},
        "ejected": {name: d.get("ejected", []) for name, d in now.items()},
    }


def _fault_text(behaviour: dict, configured: Behaviour) -> str:
    """A short description of how a replica's behaviour differs from the topology's ("50% 503", "200 ms", "hang")."""
    parts = []
    if behaviour.get("hang") and not configured.hang:
        parts.append("hang")
    rate = float(behaviour.get("error_rate", 0.0))
    if rate != configured.error_rate and rate > 0:
        parts.append(f"{rate * 100:g}% {behaviour.get('error_status', 503)}")
    latency = float(behaviour.get("latency_ms", 0.0))
    if latency != configured.latency_ms:
        parts.append(f"{latency:g} ms")
    return ", ".join(parts)
