"""Does a lab as a learner would, on a real mesh, with no browser: apply its starting policy, then for each check
first watch a full window without pressing anything (the check must not pass), then press the buttons of the
step it waits for and wait for the check to latch. Records how long each check took to pass after its action.

`window_scale` runs the lab with shorter check windows (the loader's test-only option); `press=False` never presses
(the learner only watches); `extra_start` adds commands to the lab's start (the effect there before the action)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from labs.checks import Progress, check_from_json, check_triggers, progress_update
from labs.content_files import LabSpec, parse_lab_file
from sandbox.mesh.config.topology import shipped_topology_path
from sandbox.mesh.runtime.events import CommandApplied, CommandRefused, Event, Finished, Snapshot, Started
from sandbox.mesh.runtime.experiment import Experiment
from sandbox.selectors import topology_get

CONTENT = Path(__file__).resolve().parents[2] / "labs" / "content"
HEAL_EVERYTHING = {"action": "heal"}
PASS_BOUND = 40.0  # seconds of experiment time a check may take to pass after its action (a bound, not a target)
WITHOUT_MARGIN = 1.0  # beyond a full window watched before acting (the second the watch began in is not whole)


def lab_spec(slug: str, *, window_scale: float = 1.0) -> LabSpec:
    path = next(CONTENT.glob(f"*-{slug}.yaml"))
    return parse_lab_file(path, window_scale=window_scale)


@dataclass
class LabOutcome:
    slug: str
    passed_without_action: list[str] = field(default_factory=list)  # checks that latched before their action
    not_passed: list[str] = field(default_factory=list)  # checks that did not latch within the bound
    time_to_pass: dict[str, float] = field(default_factory=dict)  # check -> seconds from action to latch
    refused: list[str] = field(default_factory=list)
    why_not: dict[str, list[str]] = field(default_factory=dict)  # check -> reasons when it was given up on
    unpressed_reasons: dict[str, list[str]] = field(default_factory=dict)  # check -> why not, before the action
    already_before: dict[str, list[str]] = field(default_factory=dict)  # check -> why not: it held before the action
    windows: dict[str, float] = field(default_factory=dict)  # check -> its window (seconds), as run
    finished: str = ""
    last_phase: str = ""
    events: list[Event] = field(default_factory=list)


def run_lab(
    slug: str,
    *,
    runtime: str,
    rate: float = 20.0,
    only_labels: set[str] | None = None,
    window_scale: float = 1.0,
    press: bool = True,
    watch: float | None = None,
    extra_start: tuple[dict, ...] = (),
    give_up: float = PASS_BOUND,
) -> LabOutcome:
    """Drive one lab end to end; `only_labels` presses only the buttons with those labels (else every button).
    `watch` is how long to watch before pressing (default: a full window and a margin); `give_up` how long after
    the press a check may take to pass before it counts as not passed."""
    spec = lab_spec(slug, window_scale=window_scale)
    checks = [check_from_json(data) for data in spec.checks]
    triggers = check_triggers(spec.steps, checks)
    assert all(trigger.step is not None for trigger in triggers), f"{slug}: a check has no step with buttons"
    outcome = LabOutcome(slug, windows={check.name: check.for_seconds for check in checks})
    watch_for = [watch if watch is not None else check.for_seconds + WITHOUT_MARGIN for check in checks]
    # a bound on the whole run: every check's unpressed window and its time to pass, plus the mesh's start
    bound = sum(watch_for) + len(checks) * max(give_up, PASS_BOUND) + 20
    topology = topology_get(spec.topology)

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
                submit([HEAL_EVERYTHING, *spec.start_commands, *extra_start], "start")  # as the lab page does
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
            progress, current = progress_update(
                checks, progress, outcome.events, triggers=triggers, started=state["started"]
            )
            index = state["check"]
            name = checks[index].name
            if state["phase"] == "watching":
                if name in progress.passed:
                    outcome.passed_without_action.append(name)
                    experiment.stop("passed without action")
                    return
                if event.t - state["watch_from"] >= watch_for[index]:
                    outcome.unpressed_reasons[name] = current.why_not if current else []
                    if not press:
                        state["phase"] = "done"
                        experiment.stop("watched without pressing")
                        return
                    buttons = [
                        action["command"]
                        for action in spec.steps[triggers[index].step]["actions"]
                        if only_labels is None or action["label"] in only_labels
                    ]
                    state["phase"] = "pressing"
                    submit(buttons, f"step-{index}")
                return
            # waiting for the check to latch after its action
            if current is not None and current.before_change is not None:
                # it held before the action: decided once, when the action was seen; it will not pass
                outcome.already_before[name] = current.why_not
                state["phase"] = "done"
                experiment.stop("held before the action")
                return
            if name in progress.passed and name not in before:
                outcome.time_to_pass[name] = round(progress.passed[name]["at"] - state["pressed"], 1)
                if index + 1 == len(checks):
                    state["phase"] = "done"
                    experiment.stop("all checks passed")
                else:
                    state.update(check=index + 1, phase="watching", watch_from=progress.passed[name]["at"])
            elif event.t - state["pressed"] > give_up:
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
