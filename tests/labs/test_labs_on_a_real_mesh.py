"""Every shipped lab on a real mesh: each check stays unpassed through a full window without the learner's
action, and passes after it. The in-process runtime where that is honest; real processes for the kill and TLS
labs. Each check's time to pass (experiment seconds from the action's answer to the latch) is written to
$MESHLEARN_VAR_DIR/lab-times.json for the record.

The labs run with the loader's test windows (WINDOW_SCALE: 10 s -> 4 s, 5 s -> 2 s, never under 2 s). Under
bounded CPU load, the per-try-timeout lab's first check does not pass while the learner presses nothing; and a
check whose effect was there before the button was pressed does not pass when it is."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.mesh.runtime.events import Snapshot
from tests.labs.lab_driver import CONTENT, run_lab

pytestmark = pytest.mark.integration

PROCESS_LABS = {"strict-mtls-plaintext", "bad-certificate", "kill-sidecar"}
ONLY_LABELS = {"slow-service-traces": {"Heal payments"}}  # the learner heals the one slow service
SLUGS = sorted(path.stem.split("-", 1)[1] for path in CONTENT.glob("*.yaml"))
WINDOW_SCALE = 0.4
SLOW_REPLICA = {"action": "slow", "service": "catalog", "replica": 0, "ms": 2000}  # the per-try lab's first button
BURNERS, BURN_SECONDS = 3, 150  # CPU spinners on this 2-core machine, each ending by itself, killed at the end


@pytest.fixture
def cpu_load():
    """BURNERS processes spinning on the CPU for at most BURN_SECONDS (on top of whatever else runs here)."""
    spin = f"import time\nend = time.monotonic() + {BURN_SECONDS}\nwhile time.monotonic() < end:\n    pass\n"
    burners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(BURNERS)]
    try:
        yield [burner.pid for burner in burners]
    finally:
        for burner in burners:
            burner.kill()
            burner.wait(timeout=30)


def _record(slug: str, times: dict[str, float]) -> None:
    path = Path(os.environ.get("MESHLEARN_VAR_DIR", "var")) / "lab-times.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    recorded = json.loads(path.read_text()) if path.exists() else {}
    recorded[slug] = times
    path.write_text(json.dumps(recorded, indent=2, sort_keys=True))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("slug", SLUGS)
def test_each_check_fails_without_its_action_and_passes_with_it(slug):
    runtime = "process" if slug in PROCESS_LABS else "in_process"
    outcome = run_lab(slug, runtime=runtime, only_labels=ONLY_LABELS.get(slug), window_scale=WINDOW_SCALE)
    assert outcome.refused == []
    assert all(2 <= seconds <= 4 for seconds in outcome.windows.values()), outcome.windows
    assert outcome.passed_without_action == [], f"passed before the learner acted: {outcome.passed_without_action}"
    assert outcome.not_passed == [], f"did not pass after the action: {outcome.why_not}"
    # before its button each check said it waits for the learner's change, then what it would need in numbers
    assert all(
        reasons[0].startswith("Waiting for your change: press") for reasons in outcome.unpressed_reasons.values()
    )
    assert len(outcome.unpressed_reasons) == len(outcome.windows)
    assert outcome.finished == "all checks passed", outcome.last_phase
    _record(slug, outcome.time_to_pass)


@pytest.mark.timeout(300)
def test_healing_the_wrong_services_does_not_pass_the_traces_lab():
    # payments stays slow (250 ms) whatever else is healed: 10 s (five test windows) shows it stays unpassed
    outcome = run_lab(
        "slow-service-traces",
        runtime="in_process",
        only_labels={"Heal catalog", "Heal cart"},
        window_scale=WINDOW_SCALE,
        give_up=10,
    )
    assert outcome.not_passed == ["fast-again"]
    assert any(reason.startswith("p50 latency at the entry") for reason in outcome.why_not["fast-again"])


def _frontend_to_catalog(outcome):
    """UT responses and effective success on frontend -> catalog over the run, to say how loaded the mesh was."""
    edges = [
        edge
        for event in outcome.events
        if isinstance(event, Snapshot)
        for edge in event.edges
        if edge.source == "frontend" and edge.destination == "catalog" and edge.rps > 0
    ]
    ut = sum(edge.flags.get("UT", 0) for edge in edges)
    weight = sum(edge.rps for edge in edges)
    success = sum(edge.effective_success * edge.rps for edge in edges if edge.effective_success is not None) / weight
    return ut, success


@pytest.mark.saturates
@pytest.mark.timeout(300)
def test_under_cpu_load_the_per_try_lab_does_not_pass_while_the_learner_presses_nothing(cpu_load):
    # the written 5 s windows, watched for 30 s (the issue saw this check pass 25 s after the start, untouched), at
    # 60 requests per second: with the burners the one event loop falls behind and calls time out by themselves
    # (two runs here: 1418 UT at 52% success, 193 UT at 93.5%), which the check must not take for the learner's
    outcome = run_lab("per-try-timeout", runtime="in_process", rate=60, press=False, watch=30)
    assert outcome.refused == []
    assert outcome.passed_without_action == []
    assert outcome.finished == "watched without pressing", outcome.last_phase
    assert outcome.unpressed_reasons["overall-timeout-fails"][0] == (
        "Waiting for your change: press “catalog replica 0 answers after 2000 ms”. "
        "This check counts only what the mesh does after it."
    )
    ut, success = _frontend_to_catalog(outcome)
    print(f"under load, untouched: {ut} UT on frontend -> catalog, effective success {success:.1%}")


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "slug, already, says",
    [
        # the whole check held before the button: the page says so and it never passes
        (
            "abort-fault",
            {"action": "fail", "service": "b", "percent": 50, "status": 503},
            "The mesh was already doing this before your change, so your change did not cause it",
        ),
        # a condition against the baseline: the change must move the number, and here it moves nothing
        ("per-try-timeout", SLOW_REPLICA, "effective success on frontend → catalog:"),
    ],
)
def test_a_check_whose_effect_is_there_before_the_button_does_not_pass_when_it_is_pressed(slug, already, says):
    # the effect is there from the start (as an overloaded machine's failures would be): pressing the button
    # changes nothing, so the check must not take the credit
    outcome = run_lab(slug, runtime="in_process", extra_start=(already,), window_scale=WINDOW_SCALE, give_up=10)
    assert outcome.refused == [] and outcome.passed_without_action == []
    (name,) = outcome.already_before or outcome.why_not
    reasons = outcome.already_before.get(name) or outcome.why_not[name]
    assert any(reason.startswith(says) for reason in reasons), reasons
    assert outcome.time_to_pass == {}
    if slug == "per-try-timeout":
        assert any("before your change − 20%)" in reason for reason in reasons), reasons
    else:
        assert "Before you pressed the button: effective success at the entry:" in reasons[0]
