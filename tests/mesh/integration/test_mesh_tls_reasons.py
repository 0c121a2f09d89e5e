"""A bad certificate shows its real reason on every edge it breaks, told by the caller, who names itself, the method
and the path: what a learner reads in the experiment's request records and edge counts, on a mesh of processes."""

from itertools import pairwise
from pathlib import Path

import pytest
from mesh_support import pair_topology, run

from sandbox.mesh.config.topology import load_topology
from sandbox.mesh.runtime.events import CommandApplied, Snapshot, event_from_json
from sandbox.mesh.runtime.experiment import Experiment

pytestmark = pytest.mark.integration

REASONS = {"expired": "certificate expired", "foreign_ca": "unknown ca", "wrong_spiffe": "spiffe id mismatch"}
SETTLE = 1.0  # seconds after the command before a snapshot counts: connections made before it drain first
WANTED_RECORDS = 20  # records on the broken edge before the run stops (two seconds of load at 10 requests/s)
SHOP = Path(__file__).resolve().parents[3] / "sandbox/mesh/topologies/shop.yaml"


def _after(events: list, start: float) -> list[Snapshot]:
    """Snapshots whose whole interval lies after `start`."""
    snapshots = [e for e in events if isinstance(e, Snapshot)]
    return [s for previous, s in pairwise(snapshots) if previous.t >= start]


def _records_on(snapshots: list[Snapshot], source: str, destination: str) -> list:
    return [r for s in snapshots for r in s.recent if r.destination == destination and r.source in (source, "unknown")]


def broken_edge(path, service: str, fault: str, source: str, destination: str) -> tuple[list[Snapshot], list]:
    """Run `path`'s mesh as processes with load, give `service` the certificate `fault`, and return the settled
    snapshots after it and the request records on source -> destination in them (and any whose caller is unknown)."""
    events: list = []

    async def body():
        experiment = None

        def on_event(event):
            events.append(event_from_json(event.to_json()))  # as the site reads it back from Redis
            snapshots = [e for e in events if isinstance(e, Snapshot)]
            applied = [e for e in events if isinstance(e, CommandApplied)]
            if isinstance(event, Snapshot) and len(snapshots) == 1:
                experiment.submit({"action": "cert", "service": service, "fault": fault})
            if applied:
                settled = _after(events, applied[0].t + SETTLE)
                if len(settled) >= 2 and len(_records_on(settled, source, destination)) >= WANTED_RECORDS:
                    experiment.stop()

        experiment = Experiment(load_topology(path), topology_path=str(path), rate=10, on_event=on_event)
        await experiment.run(duration=60)  # a bound: the consumer stops it as soon as enough is seen

    run(body(), 120)
    applied = next(e for e in events if isinstance(e, CommandApplied))
    settled = _after(events, applied.t + SETTLE)
    return settled, _records_on(settled, source, destination)


def _edge_tls(snapshots: list[Snapshot], source: str, destination: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for snapshot in snapshots:
        for edge in snapshot.edges:
            if (edge.source, edge.destination) == (source, destination):
                for reason, count in edge.tls_failures.items():
                    counts[reason] = counts.get(reason, 0) + count
    return counts


def _assert_told_with_reason(records: list, source: str, reason: str, path: str = "/") -> None:
    assert len(records) >= WANTED_RECORDS, records
    for record in records:
        assert record.source == source, record
        assert getattr(record, "tls_reason", "") == reason or reason in record.detail, record
        assert record.status == 0 or record.status >= 500, record
    # The caller's side knows what it sent. A callee may log a handshake a moment before the caller counts it (the
    # two are read at nearly the same instant); that record still names the caller and the reason, but most are
    # the caller's own.
    told_by_caller = [r for r in records if r.method != "-"]
    assert len(told_by_caller) > len(records) / 2, records
    assert all((r.method, r.path) == ("GET", path) for r in told_by_caller), told_by_caller


@pytest.mark.parametrize("fault", ["expired", "foreign_ca", "wrong_spiffe"])
def test_a_bad_certificate_at_the_entry_is_told_by_the_load_generator_with_its_reason(tmp_path, fault):
    reason = REASONS[fault]
    snapshots, records = broken_edge(pair_topology(tmp_path), "a", fault, "loadgen", "a")

    _assert_told_with_reason(records, "loadgen", reason)
    assert all(r.tls_reason == reason for r in records), records
    tls = _edge_tls(snapshots, "loadgen", "a")
    assert tls.get(reason, 0) >= WANTED_RECORDS / 2 and "connection reset" not in tls, tls
    if fault == "wrong_spiffe":
        return  # a valid certificate for another identity: a's sidecar completes the handshake and sees no failure
    # a's own sidecar now gets the load generator's alert: it counts the same reason, not a reset.
    refused_at_a: dict[str, int] = {}
    for snapshot in snapshots:
        for service in snapshot.services:
            if service.name == "a":
                for why, count in service.tls_failures.items():
                    refused_at_a[why] = refused_at_a.get(why, 0) + count
    assert refused_at_a.get(reason, 0) > 0 and "connection reset" not in refused_at_a, refused_at_a


@pytest.mark.parametrize("fault", ["expired", "foreign_ca", "wrong_spiffe"])
def test_a_bad_certificate_at_the_callee_is_told_by_its_caller_with_its_reason(tmp_path, fault):
    reason = REASONS[fault]
    snapshots, records = broken_edge(pair_topology(tmp_path), "b", fault, "a", "b")

    _assert_told_with_reason(records, "a", reason)
    assert _edge_tls(snapshots, "a", "b").get(reason, 0) >= WANTED_RECORDS / 2


@pytest.mark.parametrize("service, caller", [("frontend", "loadgen"), ("cart", "frontend"), ("catalog", "frontend")])
def test_an_expired_certificate_in_the_shop_is_told_on_the_edge_it_breaks(service, caller):
    snapshots, records = broken_edge(SHOP, service, "expired", caller, service)

    _assert_told_with_reason(records, caller, "certificate expired")
    assert _edge_tls(snapshots, caller, service).get("certificate expired", 0) >= WANTED_RECORDS / 2
