"""What an experiment shows while parts of the mesh are down, and how they come back: a killed sidecar stays in
the snapshots as dead, `heal` brings everything back, a killed control plane is restarted and the sidecars resync
with it, and nothing is left on disk even when the supervisor is SIGKILLed."""

import os
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest
from mesh_support import pair_topology, pids_in_group, run

from sandbox.mesh.config.topology import load_topology
from sandbox.mesh.runtime.events import CommandApplied, CommandRefused, ProcessExited, Snapshot
from sandbox.mesh.runtime.experiment import Experiment

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


class Script:
    """Drives an experiment from its events: each stage waits for a condition on the snapshots, then acts."""

    def __init__(self, stages):
        self.stages = list(stages)
        self.events = []
        self.experiment = None
        self.marks = {}

    def __call__(self, event):
        self.events.append(event)
        if isinstance(event, Snapshot) and self.stages:
            name, ready, act = self.stages[0]
            if ready(self, event):
                self.stages.pop(0)
                self.marks[name] = event.t
                act(self.experiment)

    def after(self, name):
        """Snapshots whose whole interval came after stage `name` acted (and its command was applied)."""
        applied = [
            e.t for e in self.events if isinstance(e, CommandApplied | CommandRefused) and e.t >= self.marks[name]
        ]
        if not applied:
            return []
        taken = [e for e in self.events if isinstance(e, Snapshot)]
        return [s for previous, s in pairwise(taken) if previous.t >= applied[0]]


def service(snapshot, name):
    return next(s for s in snapshot.services if s.name == name)


def edge(snapshot, source, destination):
    return next(e for e in snapshot.edges if (e.source, e.destination) == (source, destination))


def snapshots(script):
    return [e for e in script.events if isinstance(e, Snapshot)]


def test_a_killed_sidecar_shows_as_dead_and_heal_brings_it_back(tmp_path):
    path = pair_topology(tmp_path)

    def count(n):
        return lambda s, e: len(snapshots(s)) >= n

    script = Script(
        [
            ("kill", count(2), lambda x: x.submit({"action": "kill", "service": "b", "target": "sidecar"})),
            ("heal", lambda s, e: len(s.after("kill")) >= 2, lambda x: x.submit({"action": "heal"})),
            ("done", lambda s, e: len(s.after("heal")) >= 2, lambda x: x.stop()),
        ]
    )

    async def body():
        script.experiment = Experiment(load_topology(path), topology_path=str(path), rate=30, on_event=script)
        return await script.experiment.run(duration=60)

    assert run(body(), 90).reason == "stopped"
    exited = [e for e in script.events if isinstance(e, ProcessExited)]
    assert [(e.process, e.service, e.replica, e.expected) for e in exited] == [("sidecar", "b", 0, True)]
    dead = [s for s in script.after("kill") if s.t <= script.marks["heal"]]
    assert dead and all(service(s, "b").alive == {"app-0": True, "sidecar-0": False} for s in dead)
    assert all(edge(s, "a", "b").effective_success == 0.0 for s in dead)  # a's sidecar finds nobody at b
    assert all(edge(s, "a", "b").flags.get("UF", 0) > 0 for s in dead)
    assert all(service(s, "b").rps == 0 for s in dead)  # b's app gets nothing, and says so rather than vanishing
    healed = script.after("heal")
    assert all(service(s, "b").alive == {"app-0": True, "sidecar-0": True} for s in healed)
    assert all(edge(s, "a", "b").effective_success == 1.0 and s.effective_success == 1.0 for s in healed)


@pytest.mark.parametrize("runtime", ["process", "in_process"])
def test_a_restarted_control_plane_resyncs_the_sidecars(tmp_path, runtime):
    path = pair_topology(tmp_path)

    def count(n):
        return lambda s, e: len(snapshots(s)) >= n

    script = Script(
        [
            (
                "kill",
                count(2),
                lambda x: (
                    x.submit({"action": "kill", "target": "control_plane"}),
                    x.submit({"action": "deny", "service": "b", "source": "a"}, id="while-down"),
                ),
            ),
            (
                "restart",
                lambda s, e: len(s.after("kill")) >= 2,
                lambda x: x.submit({"action": "restart", "target": "control_plane"}),
            ),
            (
                "deny",
                lambda s, e: len(s.after("restart")) >= 1,
                lambda x: x.submit({"action": "deny", "service": "b", "source": "a"}, id="after"),
            ),
            ("done", lambda s, e: len(s.after("deny")) >= 2, lambda x: x.stop()),
        ]
    )

    async def body():
        script.experiment = Experiment(
            load_topology(path), runtime=runtime, topology_path=str(path), rate=30, on_event=script
        )
        return await script.experiment.run(duration=60)

    assert run(body(), 120).reason == "stopped"
    if runtime == "process":
        exited = [e for e in script.events if isinstance(e, ProcessExited)]
        assert [(e.process, e.expected) for e in exited] == [("control_plane", True)]
    refused = next(e for e in script.events if isinstance(e, CommandRefused))
    assert refused.id == "while-down" and refused.reason.startswith("the control plane is not reachable")
    # Without a control plane the sidecars keep serving their last config; with the new one (same CA) too.
    down = [s for s in script.after("kill") if s.t <= script.marks["restart"]]
    assert down and all(s.effective_success == 1.0 and not s.control_plane_alive for s in down)
    back = [s for s in script.after("restart") if s.t <= script.marks["deny"]]
    assert back and all(s.effective_success == 1.0 and s.control_plane_alive for s in back)
    # The new control plane's push reaches b's sidecar: it refuses a from now on.
    denied = script.after("deny")
    assert all(edge(s, "a", "b").effective_success == 0.0 for s in denied)
    assert all(edge(s, "a", "b").actual_success == 0.0 for s in denied)  # b answered 403 itself


def _wait_until(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_no_file_is_left_behind_by_a_run_or_by_a_sigkilled_supervisor(tmp_path):
    path = pair_topology(tmp_path)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.mesh", "run", str(path), "--duration", "2", "--rate", "10"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert os.listdir(temp) == []

    supervisor = subprocess.Popen(
        [sys.executable, "-m", "sandbox.mesh", "run", str(path), "--duration", "30", "--rate", "10"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        pgid = int(supervisor.stdout.readline().rsplit("process group", 1)[1].strip())
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait(5)
        assert _wait_until(lambda: pids_in_group(pgid) == [], 10)
        assert os.listdir(temp) == []
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        supervisor.stdout.close()


def test_the_command_line_reports_a_dead_control_plane_and_goes_on(tmp_path):
    path = pair_topology(tmp_path)
    scenario = tmp_path / "cp.yaml"
    scenario.write_text(
        "name: cp\nactions:\n"
        "  - {at: 1s, action: kill, target: control_plane}\n"
        "  - {at: 3s, action: restart, target: control_plane}\n"
        "  - {at: 30s, action: heal}\n"
    )
    out = tmp_path / "result.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox.mesh",
            "run",
            str(path),
            "--scenario",
            str(scenario),
            "--duration",
            "5",
            "--rate",
            "20",
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "process control_plane control-plane-0" in done.stdout and "killed on purpose" in done.stdout
    import json

    steps = json.loads(out.read_text())["scenario"]
    assert [s["error"] for s in steps[:2]] == [None, None]
    assert steps[2]["applied_at"] is None and steps[2]["error"] == "not applied: the end of the run at 5s"
    assert json.loads(out.read_text())["summary"]["success_rate"] == 1.0
