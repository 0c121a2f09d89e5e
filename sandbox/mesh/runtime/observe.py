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
from typing import Any

from sandbox.mesh.config.model import Behaviour, Topology
from sandbox.mesh.dataplane import http1
from sandbox.mesh.dataplane.telemetry import parse_traceparent
from sandbox.mesh.runtime.events import Attempt, EdgeSnapshot, RequestRecord, ServiceSnapshot

LOADGEN = "loadgen"
READ_TIMEOUT = 2.0


@dataclass
class SidecarReading:
    stats: dict
    records: list[dict]


@dataclass
class Reading:
    """One interval's raw material: what each replica answered (None: it did not)."""

    apps: dict[tuple[str, int], dict | None] = field(default_factory=dict)
    sidecars: dict[tuple[str, int], SidecarReading | None] = field(default_factory=dict)
    # Which services the control plane hands a bad certificate on purpose (its status is the one record).
    cert_faults: dict[str, str] = field(default_factory=dict)


def edges_of(topology: Topology) -> list[tuple[str, str]]:
    """[source, destination] for every call in the topology, the load generator's entry edge first."""
    edges = [(LOADGEN, topology.entry)]
    for svc in topology.services:
        edges.extend((svc.name, callee) for callee in svc.calls if (svc.name, callee) not in edges)
    return edges


def quantile_ms(bounds: list[float], counts: list[int], q: float) -> float:
    """Quantile q of a bucketed histogram (seconds), interpolated inside its bucket as Prometheus does; in ms."""
    total = sum(counts)
    if total == 0:
        return 0.0
    rank, running, lower = q * total, 0, 0.0
    for index, count in enumerate(counts):
        upper = bounds[index] if index < len(bounds) else bounds[-1]
        if count and running + count >= rank:
            return (lower + (upper - lower) * (rank - running) / count) * 1000
        running += count
        lower = upper
    return bounds[-1] * 1000


def _success(ok: int, total: int) -> float | None:
    return ok / total if total else None


class Observer:
    def __init__(self, mesh: Any, *, recent_limit: int = 50) -> None:
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
                for flag in flag_text.split(","):
                    if flag != "-":
                        totals["by_flag"][flag] = totals["by_flag"].get(flag, 0) + count
            for (_direction, _peer, reason), count in delta["tls"].items():
                totals["tls_reasons"][reason] = totals["tls_reasons"].get(reason, 0) + count
                totals["tls_failures"] += count
        totals["uo"] = totals["by_flag"].get("UO", 0)
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
        only_caller = self._callers.get(destination) == {source}
        # What the callee returned to this caller, every attempt counted (its inbound sidecar's view).
        actual_total = actual_ok = identified = 0
        tls: dict[str, int] = {}  # as the callee refused them; merged with the caller's view below
        for replica in range(callee.replicas):
            delta = sidecars.get((destination, replica))
            if delta is None:
                continue
            for (direction, src, dst, status, _flags), count in delta["series"].items():
                if direction != "inbound" or dst != destination:
                    continue
                mine = src == source or (source == LOADGEN and src not in self.names)
                if mine or (src == "unknown" and only_caller):
                    actual_total += count
                    actual_ok += count if 200 <= int(status) < 300 else 0
                    identified += count if mine and src != "unknown" else 0
            for (direction, peer, reason), count in delta["tls"].items():
                if direction == "inbound" and (peer == source or (peer == "unknown" and only_caller)):
                    tls[reason] = tls.get(reason, 0) + count
        if not callee.sidecar:  # no inbound sidecar: what its app answered is all there is to see
            for replica in range(callee.replicas):
                for status, count in apps.get((destination, replica), {}).items():
                    actual_total += count
                    actual_ok += count if 200 <= int(status) < 300 else 0
        if source == LOADGEN:
            tls = _both_views(entry.get("tls_failures", {}), tls)
            mtls = identified > 0 if actual_total else callee.sidecar and callee.mtls_mode != "DISABLE"
            return EdgeSnapshot(
                source=source,
                destination=destination,
                rps=round(entry["requests"] / max(elapsed, 1e-6), 2),
                effective_success=entry["success_rate"],
                actual_success=_success(actual_ok, actual_total),
                p50_ms=round(entry["p50_ms"], 3),
                p95_ms=round(entry["p95_ms"], 3),
                p99_ms=round(entry["p99_ms"], 3),
                tls_failures=tls,
                flags=entry.get("flags", {}),
                mtls=bool(mtls),
            )
        caller = self.topology.service(source)
        refused_by_callee, tls = tls, {}
        total = ok = retries = exhausted = overflows = 0
        flags: dict[str, int] = {}
        latency: list[int] = []
        bounds: list[float] = []
        circuit = "closed"
        ejected: set[str] = set()
        for replica in range(caller.replicas):
            delta = sidecars.get((source, replica))
            if delta is None:
                continue
            for (direction, _src, dst, status, flag_text), count in delta["series"].items():
                if direction == "outbound" and dst == destination:
                    total += count
                    ok += count if 200 <= int(status) < 300 else 0
                    for flag in flag_text.split(","):
                        if flag != "-":
                            flags[flag] = flags.get(flag, 0) + count
            counts = delta["latency"].get(("outbound", source, destination))
            if counts:
                latency = [a + b for a, b in zip(latency, counts)] if latency else list(counts)
                bounds = delta["bounds"]
            retries += delta["retries"].get(destination, 0)
            exhausted += delta["exhausted"].get(destination, 0)
            overflows += delta["overflows"].get(destination, 0)
            if delta["circuit"].get(destination) == "open":
                circuit = "open"
            ejected.update(self._endpoint_name(address) for address in delta["ejected"].get(destination, []))
            for (direction, peer, reason), count in delta["tls"].items():
                if direction == "outbound" and peer == destination:
                    tls[reason] = tls.get(reason, 0) + count
        tls = _both_views(tls, refused_by_callee)
        if actual_total and callee.sidecar:
            mtls = identified > 0
        else:
            mtls = callee.sidecar and self._outbound_tls.get(source, True) and caller.sidecar
        return EdgeSnapshot(
            source=source,
            destination=destination,
            rps=round(total / max(elapsed, 1e-6), 2),
            effective_success=_success(ok, total),
            actual_success=_success(actual_ok, actual_total),
            p50_ms=round(quantile_ms(bounds, latency, 0.50), 3) if latency else 0.0,
            p95_ms=round(quantile_ms(bounds, latency, 0.95), 3) if latency else 0.0,
            p99_ms=round(quantile_ms(bounds, latency, 0.99), 3) if latency else 0.0,
            retries=retries,
            retry_budget_exhausted=exhausted,
            circuit=circuit,
            pending_overflow=overflows,
            ejected=sorted(ejected),
            tls_failures=tls,
            flags=flags,
            mtls=bool(mtls),
        )

    def _endpoint_name(self, address: str) -> str:
        """ "127.0.0.1:40123" -> "b-1" (the replica whose inbound, or app when it has no sidecar, listens there)."""
        port = int(address.rsplit(":", 1)[1]) if ":" in address else -1
        for (service, replica), rep in self.mesh.replicas.items():
            if port in (rep.inbound_port, rep.app_port) and port:
                return f"{service}-{replica}"
        return address

    def _recent(self, reading: Reading, sidecars: dict, entry: dict) -> list[RequestRecord]:
        """New records: every sidecar's outbound requests, the entry's requests from the load generator (those
        that reached it, and those whose connection failed, from the load generator's side), and refused
        handshakes; the newest `recent_limit`, oldest first.

        A refused handshake is one failure seen from both ends. The caller's record says more (who called, the
        method and path, its own verify error), so a callee's handshake record is left out when a caller's side
        counted a failure of the same reason to that service in this interval; one the callers did not see (a
        plaintext caller at a STRICT port only learns of a close) is kept, with the reason the callee knows."""
        found: list[tuple[float, RequestRecord]] = []
        told_by_caller: dict[tuple[str, str], int] = {}  # (callee, reason) -> failed handshakes a caller counted
        for reason, count in entry.get("tls_failures", {}).items():
            key = (self.topology.entry, reason)
            told_by_caller[key] = told_by_caller.get(key, 0) + count
        for delta in sidecars.values():
            for (direction, peer, reason), count in (delta or {}).get("tls", {}).items():
                if direction == "outbound":
                    told_by_caller[(peer, reason)] = told_by_caller.get((peer, reason), 0) + count
        for sample in entry.get("failures", []):
            found.append((sample.started, self._loadgen_record(sample)))
        for (service, replica), r in reading.sidecars.items():
            if r is None:
                continue
            for record in r.records:
                inbound = record.get("direction") == "inbound"
                handshake = inbound and record.get("method") == "-"
                from_outside = inbound and service == self.topology.entry and record.get("source") not in self.names
                if inbound and not (handshake or from_outside):
                    continue
                told = (service, record.get("tls_reason", ""))
                if handshake and told_by_caller.get(told, 0) > 0:
                    told_by_caller[told] -= 1
                    continue
                found.append((record.get("time", 0.0), self._record(service, replica, record)))
        found.sort(key=lambda pair: pair[0])
        return [record for _, record in found[-self.recent_limit :]] if self.recent_limit > 0 else []

    def _loadgen_record(self, sample: Any) -> RequestRecord:
        """A load-generator request that got no answer because its connection failed, as the caller saw it."""
        self._loadgen_seq += 1
        flags = [flag for flag in sample.flags.split(",") if flag]
        endpoint = self._endpoint_name(sample.upstream) if sample.upstream else ""
        duration = round(sample.latency * 1000, 3)
        return RequestRecord(
            id=f"{LOADGEN}:{self._loadgen_seq}",
            source=LOADGEN,
            destination=self.topology.entry,
            method=sample.method,
            path=sample.path,
            status=sample.status,
            flags=flags,
            duration_ms=duration,
            attempts=[Attempt(status=sample.status, flags=flags, endpoint=endpoint, duration_ms=duration)],
            mtls=False,
            detail=sample.detail,
            tls_reason=sample.tls_reason,
        )

    def _caller_of(self, service: str) -> str:
        """Who called `service` when a refused handshake leaves it no identity: its one caller in the topology,
        or "unknown" when several could have."""
        callers = self._callers.get(service, set())
        return next(iter(callers)) if len(callers) == 1 else "unknown"

    def _record(self, service: str, replica: int, r: dict) -> RequestRecord:
        flags = [] if r.get("flags", "-") == "-" else r["flags"].split(",")
        parsed = parse_traceparent(r.get("traceparent") or None)
        endpoint = self._endpoint_name(r["upstream"]) if r.get("upstream", "-") != "-" else ""
        tries = r.get("tries") or []
        if tries:
            attempts = [
                Attempt(
                    status=t.get("status", 0),
                    flags=list(t.get("flags", [])),
                    endpoint=self._endpoint_name(t["endpoint"]) if t.get("endpoint") else "",
                    backoff_ms=round(t.get("backoff_ms", 0.0), 3),
                    duration_ms=round(t.get("duration_ms", 0.0), 3),
                )
                for t in tries
            ]
        else:
            attempts = (
                [
                    Attempt(
                        status=r.get("status", 0),
                        flags=flags,
                        endpoint=endpoint,
                        duration_ms=round(r.get("duration_ms", 0.0), 3),
                    )
                ]
                if r.get("attempts", 0)
                else []
            )
        inbound = r.get("direction") == "inbound"
        source = (
            r.get("source", "")
            if not inbound or r.get("source") in self.names
            else (LOADGEN if r.get("source") == LOADGEN else r.get("source", "unknown"))
        )
        if inbound and r.get("method") == "-" and source == "unknown":
            source = self._caller_of(service)
        destination = r.get("destination", "")
        mtls = (
            (r.get("source") not in ("", "unknown"))
            if inbound
            else bool(
                self._outbound_tls.get(service, True)
                and destination in self.names
                and self.topology.service(destination).sidecar
            )
        )
        return RequestRecord(
            id=f"{service}-{replica}:{r.get('seq', 0)}",
            source=source,
            destination=destination,
            method=r.get("method", ""),
            path=r.get("path", ""),
            status=r.get("status", 0),
            flags=flags,
            duration_ms=round(r.get("duration_ms", 0.0), 3),
            attempts=attempts,
            mtls=mtls,
            trace_id=parsed[0] if parsed else "",
            detail=r.get("detail", ""),
            tls_reason=r.get("tls_reason", ""),
        )


def _both_views(caller: dict[str, int], callee: dict[str, int]) -> dict[str, int]:
    """Handshake failures on one edge by reason, from the caller's and the callee's counts. One failed handshake
    is seen by both ends (an expired certificate, an unknown CA), some by one end only (plaintext at a STRICT
    port): per reason, the larger count, not the sum."""
    merged = dict(caller)
    for reason, count in callee.items():
        merged[reason] = max(merged.get(reason, 0), count)
    return merged


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
