"""The lab's stored progress: the checks take their buttons from the lab's own steps, and the learner's change
and its baseline are kept with the progress (the page reads only the newest events)."""

import pytest
from django.utils import timezone

from labs import services
from labs.models import Lab, LabProgress
from sandbox.mesh.runtime.events import CommandApplied, Snapshot

pytestmark = pytest.mark.usefixtures("course")
FAIL_HALF = {"action": "fail", "service": "b", "percent": 50, "status": 503}  # abort-fault's one button


def seconds(start, end, success):
    return [Snapshot(t=t, effective_success=success, requests=20) for t in range(start, end)]


@pytest.fixture
def progress(db, learner):
    lab = Lab.objects.get(slug="abort-fault")  # caller-sees-failures: effective success at the entry <= 70%
    lab.checks = [{**lab.checks[0], "when": ["effective_success at entry <= 70%"]}]
    lab.save()
    return LabProgress.objects.create(user=learner, lab=lab, predicted_at=timezone.now(), started_t=0.5)


def test_failing_with_no_button_pressed_does_not_complete_the_lab(progress):
    progress, current = services.lab_checks_update(progress=progress, events=seconds(1, 30, 0.4))
    assert progress.completed_at is None and progress.checks_state.get("passed", {}) == {}
    assert current.why_not[0].startswith("Waiting for your change: press “b fails 50% with 503”")


def test_the_learners_change_completes_it_and_is_kept_with_its_baseline(progress):
    events = seconds(1, 6, 1.0) + [CommandApplied(t=5.5, command=FAIL_HALF)] + seconds(6, 9, 0.5)
    progress, _ = services.lab_checks_update(progress=progress, events=events)
    progress.refresh_from_db()
    acted = progress.checks_state["acted"]["caller-sees-failures"]
    assert acted["at"] == 5.5 and acted["held"] is False and acted["seconds"] == 4  # whole seconds after the start
    events += seconds(9, 13, 0.5)
    progress, _ = services.lab_checks_update(progress=progress, events=events[-6:])  # the change is out of view
    progress.refresh_from_db()
    assert "caller-sees-failures" in progress.checks_state["passed"] and progress.completed_at is not None


def test_failing_before_the_change_is_kept_and_said(progress):
    events = seconds(1, 6, 0.4) + [CommandApplied(t=5.5, command=FAIL_HALF)] + seconds(6, 20, 0.4)
    progress, current = services.lab_checks_update(progress=progress, events=events)
    progress.refresh_from_db()
    assert progress.checks_state["acted"]["caller-sees-failures"]["held"] is True
    assert progress.completed_at is None
    status = services._states(progress, current)[0]
    assert status.status == "current" and "already doing this before your change" in status.reasons[0]
