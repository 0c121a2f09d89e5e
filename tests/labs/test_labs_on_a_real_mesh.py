"""Every shipped lab on a real mesh: each check stays unpassed through a full window without the learner's
action, and passes after it. The in-process runtime where that is honest; real processes for the kill and TLS
labs. Each check's time to pass (experiment seconds from the action's answer to the latch) is written to
$MESHLEARN_VAR_DIR/lab-times.json for the record."""

import json
import os
from pathlib import Path

import pytest

from tests.labs.lab_driver import CONTENT, run_lab

pytestmark = pytest.mark.integration

PROCESS_LABS = {"strict-mtls-plaintext", "bad-certificate", "kill-sidecar"}
ONLY_LABELS = {"slow-service-traces": {"Heal payments"}}  # the learner heals the one slow service
SLUGS = sorted(path.stem.split("-", 1)[1] for path in CONTENT.glob("*.yaml"))


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
    outcome = run_lab(slug, runtime=runtime, only_labels=ONLY_LABELS.get(slug))
    assert outcome.refused == []
    assert outcome.passed_without_action == [], f"passed before the learner acted: {outcome.passed_without_action}"
    assert outcome.not_passed == [], f"did not pass after the action: {outcome.why_not}"
    assert all(reasons for reasons in outcome.unpressed_reasons.values())  # it said why, before the action
    assert outcome.finished == "all checks passed", outcome.last_phase
    _record(slug, outcome.time_to_pass)


@pytest.mark.timeout(300)
def test_healing_the_wrong_services_does_not_pass_the_traces_lab():
    outcome = run_lab("slow-service-traces", runtime="in_process", only_labels={"Heal catalog", "Heal cart"})
    assert outcome.not_passed == ["fast-again"]
    assert any(reason.startswith("p50 latency at the entry") for reason in outcome.why_not["fast-again"])
