"""The experiment runtime end to end: a real `pair` mesh in each runtime, a learner's command changing what the
next snapshots show, a bad command refused with its reason, and nothing left running afterwards."""

import asyncio
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from mesh_support import pair_topology, pids_in_group, port_listening, run, write_topology

from sandbox.mesh.config.topology import load_topology
from sandbox.mesh.runtime.events import (
    CommandApplied,
    CommandRefused,
    Finding,
    Finished,
    Snapshot,
    Started,
    event_from_json,
)
from sandbox.mesh.runtime.experiment import Experiment
from sandbox.mesh.runtime.scenario import parse_scenario

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def _b(snapshot: Snapshot):
    return next(s for s in snapshot.services if s.name == "b")


def _edge(snapshot: Snapshot, source: str, destination: str):
    return next(e for e in snapshot.edges if (e.source, e.destination) == (source, destination))


def _between(events, start: float, end: float = float("inf")) -> list[Snapshot]:
    """Snapshots whose whole interval (from the previous snapshot to this one) lies between start and end."""
    snapshots = [e for e in events if isinstance(e, Snapshot)]
    return [s for previous, s in pairwise(snapshots) if previous.t >= start and s.t <= end]


@pytest.mark.parametrize("runtime", ["process", "in_process"])
def test_a_command_shows_in_the_following_snapshots_and_a_bad_one_is_refused(tmp_path, runtime):
    path = pair_topology(tmp_path, b_traffic="retry:\n  attempts: 3\n  budget_ratio: 1.0\n")
    events = []

    async def body():
        experiment = None

        def on_event(event):
            # Every event crosses the seam as JSON (the site reads them back from Redis): check it survives.
            events.append(event_from_json(event.to_json()))
            snapshots = [e for e in events if isinstance(e, Snapshot)]
            applied = [e for e in events if isinstance(e, CommandApplied)]
            if isinstance(event, Snapshot) and len(snapshots) == 2:
                experiment.submit({"action": "fail", "service": "b", "percent": 50, "status": 503}, id="one")
                experiment.submit({"action": "fail", "service": "b", "percent": 250}, id="two")
            if applied and len(_between(events, applied[0].t)) >= 3:
                experiment.stop()

        experiment = Experiment(
            load_topology(path), runtime=runtime, topology_path=str(path), rate=40, on_event=on_event
        )
        finished = await experiment.run(duration=60)  # a bound: the consumer stops it much sooner
        return experiment, finished

    experiment, finished = run(body(), 90)
    assert isinstance(events[0], Started) and events[0].services == ["a", "b"]
    assert events[0].edges == [["loadgen", "a"], ["a", "b"]]
    assert isinstance(events[-1], Finished) and finished.reason == "stopped"

    applied = next(e for e in events if isinstance(e, CommandApplied))
    assert applied.id == "one" and applied.said == "service b fails 50% of requests with 503"
    refused = next(e for e in events if isinstance(e, CommandRefused))
    assert refused.id == "two"
    assert refused.reason == "percent: must be a number from 0 to 100, got 250"

    snapshots = [e for e in events if isinstance(e, Snapshot)]
    before = [s for s in snapshots if s.t <= applied.t]
    after = _between(events, applied.t)  # whole intervals after the fault
    assert all(_b(s).actual_success == 1.0 for s in before)
    answered = sum(_b(s).rps for s in after)
    ok = sum(_b(s).rps * _b(s).actual_success for s in after)
    assert ok / answered < 0.75  # b answers about half of its requests with 503
    assert all(_b(s).fault == "50% 503" for s in after)
    assert sum(_edge(s, "a", "b").retries for s in after) > 0  # a's sidecar retries what b fails
    assert sum(s.requests for s in after) > 0 and all(s.effective_success is not None for s in after)
    assert all(_b(s).alive == {"app-0": True, "sidecar-0": True} for s in snapshots)
    recent = [r for s in after for r in s.recent if r.source == "a" and r.destination == "b"]
    assert recent and all(r.attempts for r in recent)
    assert len({r.id for s in snapshots for r in s.recent}) == sum(len(s.recent) for s in snapshots)  # each once

    if runtime == "process":
        assert events[0].pgid and pids_in_group(events[0].pgid) == []
    entry_port = experiment.mesh.entry_ports()[0]
    assert not port_listening(entry_port)


def test_a_mesh_that_cannot_start_finishes_failed_with_the_reason_and_leaves_nothing(tmp_path):
    path = pair_topology(tmp_path)
    broken = tmp_path / "broken.yaml"  # the control plane process reads this one and refuses it
    broken.write_text("name: pair\nentry: a\nservices: []\n")
    events = []

    async def body():
        experiment = Experiment(load_topology(path), topology_path=str(broken), on_event=events.append)
        return experiment, await experiment.run(duration=5)

    experiment, finished = run(body(), 60)
    assert finished.reason.startswith("failed: control_plane control-plane-0 exited before it was ready: ")
    assert "services" in finished.reason  # the control plane's own words about the file
    assert [e.kind for e in events] == ["finished"]
    assert experiment.pgid is not None and pids_in_group(experiment.pgid) == []


def test_cancelling_the_run_tears_the_mesh_down(tmp_path):
    path = pair_topology(tmp_path)
    started = []

    async def body():
        experiment = Experiment(
            load_topology(path),
            topology_path=str(path),
            on_event=lambda e: started.append(e) if isinstance(e, Started) else None,
        )
        task = asyncio.create_task(experiment.run())
        while not started:
            await asyncio.sleep(0.05)
        assert len(pids_in_group(started[0].pgid)) == 5
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return started[0].pgid

    pgid = run(body(), 60)
    assert pids_in_group(pgid) == []


def test_importing_the_engine_leaves_asyncio_as_it_was():
    """A Celery worker imports the engine; only a sidecar process (or the in-process mesh) patches asyncio."""
    code = (
        "import asyncio.sslproto as p; before = p.SSLProtocol._do_handshake\n"
        "import sandbox.mesh.dataplane.sidecar, sandbox.mesh.runtime.supervisor, sandbox.mesh.runtime.experiment\n"
        "print(p.SSLProtocol._do_handshake is before)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "True", done.stderr


def test_identity_faults_show_on_the_edge_with_their_reason_and_plaintext_is_not_mtls(tmp_path):
    path = pair_topology(tmp_path)
    events = []

    async def body():
        experiment = None
        steps = [
            {"action": "cert", "service": "b", "fault": "expired"},
            {"action": "cert", "service": "b", "fault": "none"},
            {"action": "mtls_mode", "service": "b", "mode": "PERMISSIVE"},
            {"action": "plaintext", "service": "a"},
        ]
        marks = []

        def on_event(event):
            events.append(event)
            if not isinstance(event, Snapshot):
                return
            applied = [e.t for e in events if isinstance(e, CommandApplied)]
            if len(applied) < len(marks):
                return  # the last command is not applied yet
            ready = len(_between(events, applied[-1])) >= 2 if applied else len(events) >= 3
            if ready:
                if not steps:
                    experiment.stop()
                    return
                marks.append(event.t)
                experiment.submit(steps.pop(0))

        experiment = Experiment(load_topology(path), runtime="in_process", rate=20, on_event=on_event)
        await experiment.run(duration=60)
        return marks

    marks = run(body(), 90)
    applied = [e.t for e in events if isinstance(e, CommandApplied)]
    assert len(applied) == 4

    def during(index):
        end = marks[index + 1] if index + 1 < len(marks) else float("inf")
        return _between(events, applied[index], end)

    expired = during(0)
    assert expired and all(_edge(s, "a", "b").tls_failures.get("certificate expired", 0) > 0 for s in expired)
    assert all(_b(s).cert_fault == "expired" and _b(s).tls_failures.get("certificate expired", 0) > 0 for s in expired)
    assert all(_edge(s, "a", "b").effective_success == 0.0 for s in expired)
    healed = during(1)
    assert all(_edge(s, "a", "b").tls_failures == {} and _edge(s, "a", "b").mtls for s in healed)
    plaintext = during(3)
    assert all(_b(s).mtls_mode == "PERMISSIVE" for s in plaintext)
    assert all(_edge(s, "a", "b").effective_success == 1.0 and not _edge(s, "a", "b").mtls for s in plaintext)
    assert all(_edge(s, "loadgen", "a").mtls for s in plaintext)


@pytest.mark.parametrize("runtime", ["process", "in_process"])
def test_a_topology_with_an_error_finding_is_refused_before_any_process_starts(tmp_path, runtime):
    # a -> b -> a: each request would fan out until the machine's file limit, as the command line refuses it.
    cycle = write_topology(
        tmp_path,
        """
        name: cycle
        entry: a
        services:
          - name: a
            calls: [b]
          - name: b
            calls: [a]
    """,
    )
    events = []
    experiment = Experiment(
        load_topology(str(cycle)), runtime=runtime, topology_path=str(cycle), on_event=events.append
    )

    finished = run(experiment.run(duration=5))

    assert finished.reason.startswith("failed: ") and "MESH008" in finished.reason, finished.reason
    assert [e.code for e in events if isinstance(e, Finding)] == ["MESH008"]
    assert events[-1] is finished and not any(isinstance(e, (Started, Snapshot)) for e in events)
    assert experiment.mesh is None  # nothing was started, so nothing can be left running


def test_a_scenario_step_takes_effect_on_schedule_under_load_and_a_step_past_the_end_is_reported(tmp_path):
    # At 250 req/s the load generator shares the loop with the step's task; a step once applied at 6.9 s for 2 s.
    # Judged on the requests' schedule, not on a clock: those due well after the step see b failing.
    path = pair_topology(tmp_path)
    scenario = parse_scenario(
        "name: late\nactions:\n"
        "  - {at: 2s, action: fail, service: b, percent: 100, status: 503}\n"
        "  - {at: 60s, action: heal}\n",
        topology=load_topology(path),
    )
    events = []
    experiment = Experiment(
        load_topology(path), topology_path=str(path), rate=250, on_event=events.append, scenario=scenario
    )

    finished = run(experiment.run(duration=8), 90)

    assert finished.reason == "completed", finished.reason
    samples = experiment.load.samples
    before = [s.status for s in samples if s.scheduled < 1.5]
    after = [s.status for s in samples if s.scheduled >= 4.5]  # the late step of the bug took effect at 6.9 s
    assert before and before.count(200) >= 0.9 * len(before), {k: before.count(k) for k in set(before)}
    assert after and 200 not in after, {k: after.count(k) for k in set(after)}
    steps = finished.result["scenario"]
    assert steps[0]["error"] is None and steps[0]["applied_at"] is not None, steps
    assert steps[1]["applied_at"] is None and steps[1]["error"] == "not applied: the end of the run at 8s", steps


def test_the_results_seconds_are_the_seconds_the_page_drew(tmp_path):
    # One shape of "one second": the result's per_second rows, written by the engine, are the points the
    # experiment page's sparklines were drawn from, second for second.
    from sandbox.state import ViewState

    path = pair_topology(tmp_path)
    events = []
    page = ViewState()

    async def body():
        def on_event(event):
            events.append(event)
            page.apply(event)
            if sum(isinstance(e, Snapshot) for e in events) >= 3:
                experiment.stop()

        experiment = Experiment(load_topology(path), runtime="in_process", rate=20, on_event=on_event)
        await experiment.run(duration=60)

    run(body(), 90)
    finished = next(e for e in events if isinstance(e, Finished))
    rows = finished.result["per_second"]
    assert len(rows) >= 3
    assert rows == page.history
    assert all(row["rps"] > 0 and row["effective"] is not None for row in rows)
