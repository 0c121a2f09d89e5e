"""A lab across time, without a worker: once its experiment has ended (idle, stopped, failed), the lab page
and its status poll say what happened in plain words and offer to start again."""

import pytest
from django.urls import reverse
from django.utils import timezone

from labs import services
from labs.models import Lab, LabProgress
from sandbox.models import Experiment

pytestmark = pytest.mark.usefixtures("course")


@pytest.fixture
def lab(db, course):
    return Lab.objects.get(slug="abort-fault")


def started_on(learner, lab, experiment) -> LabProgress:
    right = lab.prediction.options.get(is_correct=True)
    services.prediction_submit(user=learner, lab=lab, option_public_id=str(right.public_id))
    progress = LabProgress.objects.get(user=learner, lab=lab)
    progress.experiment_id = experiment.pk
    progress.save()
    return progress


@pytest.mark.parametrize(
    "status,end_reason,words",
    [
        ("finished", "idle", "no page had it open"),
        ("finished", "stopped", "you stopped it"),
        ("finished", "deadline", "the longest an experiment may run"),
        ("finished", "stopped: the site shut down", "the site was restarted"),
        ("failed", "worker lost", "the machine running it stopped answering"),
        ("failed", "no worker took it in time", "no place freed up for it in time"),
    ],
)
@pytest.mark.parametrize("url", ["labs:detail", "labs:status"])
def test_a_lab_whose_experiment_ended_says_why_and_offers_to_start_again(
    client, learner, lab, status, end_reason, words, url
):
    ended = Experiment.objects.create(
        owner=learner, topology="pair", status=status, end_reason=end_reason, ended_at=timezone.now()
    )
    started_on(learner, lab, ended)
    client.force_login(learner)
    response = client.get(reverse(url, args=[lab.slug]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Your mesh for this lab has stopped" in body and words in body
    assert "Start again" in body and reverse("labs:start", args=[lab.slug]) in body
    assert 'hx-trigger="every 2s"' not in body, "an ended lab stops polling"


def test_start_again_after_the_end_gives_a_new_experiment(client, learner, lab, clean_redis):
    ended = Experiment.objects.create(owner=learner, topology="pair", status="finished", end_reason="idle")
    started_on(learner, lab, ended)
    client.force_login(learner)
    response = client.post(reverse("labs:start", args=[lab.slug]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    progress = LabProgress.objects.get(user=learner, lab=lab)
    assert progress.experiment_id != ended.pk
    assert Experiment.objects.get(pk=progress.experiment_id).status == "queued"
    assert "Your mesh for this lab has stopped" not in response.content.decode()
