"""A lab through the live sandbox: a real Celery worker runs the learner's experiment, the lab's buttons reach
it through the sandbox's command stream, and the checks read its event stream until they latch."""

import pytest

from labs import services
from labs.models import Lab, LabProgress
from sandbox.models import Experiment, ExperimentCommand
from tests.labs.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
WAIT = 90  # seconds: a generous bound on a loaded machine


def predict(learner, lab):
    right = lab.prediction.options.get(is_correct=True)
    services.prediction_submit(user=learner, lab=lab, option_public_id=str(right.public_id))


def status_of(progress):
    progress.refresh_from_db()
    return services.lab_status_refresh(progress=progress)


def test_a_lab_runs_on_the_learners_experiment_until_its_check_latches(workers, learner, course):
    workers.start("w1")
    lab = Lab.objects.get(slug="abort-fault")
    predict(learner, lab)
    progress = services.lab_start(user=learner, lab=lab)
    experiment = Experiment.objects.get(pk=progress.experiment_id, owner=learner)
    sent = [c.command["action"] for c in ExperimentCommand.objects.filter(experiment=experiment).order_by("sent_at")]
    assert sent == ["heal", *(command["action"] for command in lab.start_commands)]

    running = wait_for(
        lambda: (s := status_of(progress)).phase == "running" and s, timeout=WAIT, what="the lab running"
    )
    current = next(check for check in running.checks if check.status == "current")

    # before the learner's action: it waits for the button, and says in numbers what it would need meanwhile
    def numbers_shown():
        status = status_of(progress)
        return "effective success at the entry: 100% — needs ≤ 70%" in status.checks[0].reasons and status

    watched = wait_for(numbers_shown, timeout=WAIT, what="the mesh's numbers before the action")
    assert watched.checks[0].status == "current"
    assert watched.checks[0].reasons[0].startswith("Waiting for your change: press “b fails 50% with 503”")
    assert current.name == "caller-sees-failures"

    services.lab_action_send(progress=progress, step=1, action=0)  # "b fails 50% with 503"
    done = wait_for(lambda: (s := status_of(progress)).complete and s, timeout=WAIT, what="the check to latch")
    assert done.checks[0].observed["effective success at the entry"].endswith("%")
    progress.refresh_from_db()
    assert progress.completed_at is not None


def test_a_learners_lab_never_reaches_someone_elses_experiment(workers, learner, other_learner, course):
    lab = Lab.objects.get(slug="abort-fault")
    predict(learner, lab)
    theirs = services.lab_start(user=learner, lab=lab)
    # another learner's progress row pointing at it (a tampered record) finds no experiment of theirs
    mine = LabProgress.objects.create(
        user=other_learner,
        lab=lab,
        experiment_id=theirs.experiment_id,
        predicted_at=theirs.predicted_at,
        option=theirs.option,
    )
    assert services.lab_status_refresh(progress=mine).phase == "not_started"
    with pytest.raises(services.LabError, match="not running"):
        services.lab_action_send(progress=mine, step=1, action=0)
    assert ExperimentCommand.objects.filter(experiment_id=theirs.experiment_id).count() == 1 + len(lab.start_commands)


def test_a_running_experiment_on_another_mesh_is_not_taken_over(transactional_db, clean_redis, learner, course):
    from sandbox import services as sandbox_services

    shop = sandbox_services.experiment_start(user=learner, topology="shop")
    lab = Lab.objects.get(slug="abort-fault")  # a pair lab
    predict(learner, lab)
    with pytest.raises(services.LabError, match="already have an experiment running on the shop mesh"):
        services.lab_start(user=learner, lab=lab)
    assert not ExperimentCommand.objects.filter(experiment=shop).exists()
    assert LabProgress.objects.get(user=learner, lab=lab).experiment_id is None
    sandbox_services.experiment_stop(experiment=shop)
