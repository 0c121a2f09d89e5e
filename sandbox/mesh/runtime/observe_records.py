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
        counted a failure of the same reason to that service; one the callers did not see (a plaintext caller
        at a STRICT port only learns of a close) is kept, with the reason the callee knows. The two ends may
        fall into neighbouring intervals (the callee logs the refusal before the caller's request completes),
        so a callee's record waits one interval for its caller's count, and a caller's count unmatched in its
        interval is kept for the next one."""
        found: list[tuple[float, RequestRecord]] = []
        told_now = _told_by_caller(self.topology.entry, sidecars, entry)
        credit = self._caller_credit
        for key, count in told_now.items():
            credit[key] = credit.get(key, 0) + count
        for sample in entry.get("failures", []):
            found.append((sample.started, self._loadgen_record(sample)))
        # Last interval's unmatched callee records: matched now, or shown now (a refusal no caller saw).
        for when, service, reason, record in self._held_handshakes:
            if not _take(credit, (service, reason)):
                found.append((when, record))
        held: list[tuple[float, str, str, RequestRecord]] = []
        for (service, replica), r in reading.sidecars.items():
            if r is None:
                continue
            for record in r.records:
                inbound = record.get("direction") == "inbound"
                handshake = inbound and record.get("method") == "-"
                from_outside = inbound and service == self.topology.entry and record.get("source") not in self.names
                if inbound and not (handshake or from_outside):
                    continue
                reason = record.get("tls_reason", "")
                if handshake and not _take(credit, (service, reason)):
                    held.append((record.get("time", 0.0), service, reason, self._record(service, replica, record)))
                    continue
                if not handshake:
                    found.append((record.get("time", 0.0), self._record(service, replica, record)))
        self._held_handshakes = held
        # A caller's count is kept one interval at most: what is left of the older counts goes.
        self._caller_credit = {key: min(count, told_now.get(key, 0)) for key, count in credit.items() if count > 0}
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


def _told_by_caller(entry_name: str, sidecars: dict, entry: dict) -> dict[tuple[str, str], int]:
    """(callee, reason) -> failed handshakes the callers counted in this interval (the load generator, then
    every sidecar's outbound side)."""
    told: dict[tuple[str, str], int] = {}
    for reason, count in entry.get("tls_failures", {}).items():
        told[(entry_name, reason)] = told.get((entry_name, reason), 0) + count
    for delta in sidecars.values():
        for (direction, peer, reason), count in (delta or {}).get("tls", {}).items():
            if direction == "outbound":
                told[(peer, reason)] = told.get((peer, reason), 0) + count
    return told


def _take(credit: dict[tuple[str, str], int], key: tuple[str, str]) -> bool:
    """Use one of a caller's counted failures for `key`, if there is one left."""
    if credit.get(key, 0) <= 0:
        return False
    credit[key] -= 1
    return True
