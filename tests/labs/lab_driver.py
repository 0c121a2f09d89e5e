"""Does a lab as a learner would, on a real mesh, with no browser: apply its starting policy, then for each check
first watch a full window without pressing anything (the check must not pass), then press the buttons of the
matching step and wait for the check to latch. Records how long each check took to pass after its action."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from labs.checks import Progress, check_from_json, progress_update
from labs.content_files import LabSpec, parse_lab_file, topology_named
from sandbox.mesh.events import CommandApplied, CommandRefused, Event, Finished, Snapshot, Started
from sandbox.mesh.experiment import Experiment
from sandbox.mesh.topology import shipped_topology_path

CONTENT = Path(__file__).resolve().parents[2] / "labs" / "content"
HEAL_EVERYTHING = {"action": "heal"}
PASS_BOUND = 40.0  # seconds of experiment time a check may take to pass after its action (a bound, not a target)
WITHOUT_MARGIN = 2.0  # snapshots beyond a full window watched before acting


def lab_spec(slug: str) -> LabSpec:
    path = next(CONTENT.glob(f"*-{slug}.yaml"))
    return parse_lab_file(path)


@dataclass
class LabOutcome:
    slug: str
    passed_without_action: list[str] = field(default_factory=list)  # checks that latched before their action
    not_passed: list[str] = field(default_factory=list)  # checks that did not latch within the bound
    time_to_pass: dict[str, float] = field(default_factory=dict)  # check -> seconds from action to latch
    refused: list[str] = field(default_factory=list)
    why_not: dict[str, list[str]] = field(default_factory=dict)  # check -> reasons when it was given up on
    unpressed_reasons: dict[str, list[str]] = field(default_factory=dict)  # check -> why not, before the action
    finished: str = ""
    last_phase: str = ""
    events: list[Event] = field(default_factory=list)


def run_lab(slug: str, *, runtime: str, rate: float = 20.0, only_labels: set[str] | None = None) -> LabOutcome:
    """Drive one lab end to end; `only_labels` presses only the buttons with those labels (else every button)."""
    spec = lab_spec(slug)
    checks = [check_from_json(data) for data in spec.checks]
    action_steps = [step for step in spec.steps if step["actions"]]
    assert len(action_steps) == len(checks), f"{slug}: each check should follow one step with buttons"
    outcome = LabOutcome(slug)
    # a bound on the whole run: every check's unpressed window and its time to pass, plus the mesh's start
    bound = sum(check.for_seconds + WITHOUT_MARGIN + PASS_BOUND for check in checks) + 20
    topology = topology_named(spec.topology)

    async def body() -> None:
        experiment: Experiment
        progress = Progress()
        state = {
            "phase": "starting",
            "check": 0,
            "started": None,
            "watch_from": None,
            "pressed": None,
            "pending": set(),
        }

        def submit(commands: list[dict], prefix: str) -> None:
            ids = [f"{prefix}-{index}" for index in range(len(commands))]
            state["pending"] = set(ids)
            for command, command_id in zip(commands, ids, strict=True):
                experiment.submit(command, id=command_id)

        def on_event(event: Event) -> None:
            nonlocal progress
            outcome.events.append(event)
            if isinstance(event, Started):
                submit([HEAL_EVERYTHING, *spec.start_commands], "start")  # as the lab page starts a lab
                return
            if isinstance(event, CommandRefused):
                outcome.refused.append(f"{event.command}: {event.reason}")
                experiment.stop("refused")
                return
            if isinstance(event, CommandApplied):
                state["pending"].discard(event.id)
                if not state["pending"]:
                    if state["phase"] == "starting":
                        state.update(phase="watching", started=event.t, watch_from=event.t)
                    elif state["phase"] == "pressing":
                        state.update(phase="waiting", pressed=event.t)
                return
            if not isinstance(event, Snapshot) or state["phase"] in ("starting", "pressing", "done"):
                return
            before = set(progress.passed)
            progress, current = progress_update(checks, progress, outcome.events, started=state["started"])
            index = state["check"]
            name = checks[index].name
            if state["phase"] == "watching":
                if name in progress.passed:
                    outcome.passed_without_action.append(name)
                    experiment.stop("passed without action")
                    return
                if event.t - state["watch_from"] >= checks[index].for_seconds + WITHOUT_MARGIN:
                    outcome.unpressed_reasons[name] = current.why_not if current else []
                    buttons = [
                        action["command"]
                        for action in action_steps[index]["actions"]
                        if only_labels is None or action["label"] in only_labels
                    ]
                    state["phase"] = "pressing"
                    submit(buttons, f"step-{index}")
                return
            # waiting for the check to latch after its action
            if name in progress.passed and name not in before:
                outcome.time_to_pass[name] = round(progress.passed[name]["at"] - state["pressed"], 1)
                if index + 1 == len(checks):
                    state["phase"] = "done"
                    experiment.stop("all checks passed")
                else:
                    state.update(check=index + 1, phase="watching", watch_from=progress.passed[name]["at"])
            elif event.t - state["pressed"] > PASS_BOUND:
                outcome.not_passed.append(name)
                outcome.why_not[name] = current.why_not if current else []
                experiment.stop("gave up")

        experiment = Experiment(
            topology,
            runtime=runtime,
            topology_path=str(shipped_topology_path(spec.topology)),
            rate=rate,
            on_event=on_event,
        )
        finished: Finished = await experiment.run(duration=bound)
        outcome.finished = finished.reason
        outcome.last_phase = f"{state['phase']} check {state['check']}"

    asyncio.run(asyncio.wait_for(body(), bound + 60))
    return outcome
