"""The observer's request records: the newest requests of an interval, joined across the hops they took (by trace id), for the live page and the error decoder. A part of `Observer` (observe.py)."""

from __future__ import annotations

from sandbox.mesh.config.flags import Flags
from sandbox.mesh.dataplane.telemetry import parse_traceparent
from sandbox.mesh.runtime.events import Attempt, RequestRecord
from sandbox.mesh.runtime.loadgen import Sample
from sandbox.mesh.runtime.reading import Reading

LOADGEN = "loadgen"  # the load generator's name in edges and records


class RequestRecords:
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

    def _loadgen_record(self, sample: Sample) -> RequestRecord:
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
        flags: list[str] = list(Flags.parse(r.get("flags", "-")).in_order())
        parsed = parse_traceparent(r.get("traceparent") or None)
        attempts = self._attempts(r, flags)
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

    def _attempts(self, r: dict, flags: list[str]) -> list[Attempt]:
        """Each try of a request: from its `tries` when the sidecar logged them, else the one it sent (if any)."""
        tries = r.get("tries") or []
        if tries:
            return [
                Attempt(
                    status=t.get("status", 0),
                    flags=list(t.get("flags", [])),
                    endpoint=self._endpoint_name(t["endpoint"]) if t.get("endpoint") else "",
                    backoff_ms=round(t.get("backoff_ms", 0.0), 3),
                    duration_ms=round(t.get("duration_ms", 0.0), 3),
                )
                for t in tries
            ]
        if not r.get("attempts", 0):
            return []
        endpoint = self._endpoint_name(r["upstream"]) if r.get("upstream", "-") != "-" else ""
        return [
            Attempt(
                status=r.get("status", 0),
                flags=flags,
                endpoint=endpoint,
                duration_ms=round(r.get("duration_ms", 0.0), 3),
            )
        ]
