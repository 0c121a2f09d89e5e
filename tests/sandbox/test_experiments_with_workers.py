"""Experiments end to end with real Redis and real Celery workers (separate processes): start one from the
site, steer it, stop it, lose a worker, share work between workers, queue when all slots are busy."""

import pytest
from django.urls import reverse

from sandbox import processes, selectors
from sandbox.mesh.runtime.events import CommandApplied, Snapshot, Started
from sandbox.models import Experiment
from tests.factories import UserFactory

from .conftest import events_of, experiment_fresh, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def start_from_site(client, user, topology: str = "pair") -> Experiment:
    client.force_login(user)
    response = client.post(reverse("sandbox:start"), {"topology": topology})
    assert response.status_code == 302
    return Experiment.objects.get(owner=user, status__in=Experiment.ACTIVE)


def wait_running(experiment: Experiment) -> Experiment:
    return wait_for(lambda: (e := experiment_fresh(experiment.pk)).status == "running" and e, what="running")


def snapshots_after(pk: int, t: float) -> list[Snapshot]:
    return [event for event in events_of(pk) if isinstance(event, Snapshot) and event.t > t]


def edge(snapshot: Snapshot, source: str, destination: str):
    return next(e for e in snapshot.edges if e.source == source and e.destination == destination)


def test_a_learner_starts_steers_and_stops_a_mesh_and_nothing_is_left(workers, client, learner):
    workers.start("w1")
    experiment = wait_running(start_from_site(client, learner))
    started = wait_for(
        lambda: next((e for e in events_of(experiment.pk) if isinstance(e, Started)), None), what="Started"
    )
    assert started.pgid and processes.process_group_members(started.pgid), "the mesh runs as processes"
    wait_for(lambda: snapshots_after(experiment.pk, 0), what="a first snapshot")

    response = client.post(reverse("sandbox:command", args=[experiment.pk]), {"action": "fail"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "b fails 50%" in response.content.decode() or "503" in response.content.decode()
    applied = wait_for(
        lambda: next((e for e in events_of(experiment.pk) if isinstance(e, CommandApplied)), None),
        what="the command applied",
    )
    # The effect shows in the snapshots that follow: b's replicas now answer about half with 503.
    wait_for(
        lambda: any(
            (edge(s, "a", "b").actual_success or 1) < 0.8 for s in snapshots_after(experiment.pk, applied.t + 1)
        ),
        what="b's actual success to fall",
    )
    command = experiment_fresh(experiment.pk).commands.get()
    assert command.outcome == "applied" and command.answer

    client.post(reverse("sandbox:stop", args=[experiment.pk]))
    ended = wait_for(lambda: (e := experiment_fresh(experiment.pk)).status == "finished" and e, what="finished")
    assert ended.end_reason == "stopped"
    assert ended.result["history"], "the final numbers stay with the record"
    wait_for(lambda: not processes.process_group_members(started.pgid), what="every mesh process to exit")
    # The page of the ended experiment still shows its last numbers and the command.
    page = client.get(ended.get_absolute_url()).content.decode()
    assert "Ended" in page and command.description in page


def test_a_killed_worker_is_reaped_and_its_mesh_killed(workers, client, learner):
    workers.start("w1")
    experiment = wait_running(start_from_site(client, learner))
    pgid = wait_for(lambda: experiment_fresh(experiment.pk).pgid, what="the process group")
    workers.kill("w1")
    # The same node starts again: at worker start the janitor reaps what the lost run left.
    workers.start("w1")
    reaped = wait_for(lambda: (e := experiment_fresh(experiment.pk)).status == "failed" and e, what="reaped")
    assert reaped.end_reason == "worker lost"
    wait_for(lambda: not processes.process_group_members(pgid), what="the lost mesh to be killed")
    # The learner may start again at once.
    client.force_login(learner)
    assert client.post(reverse("sandbox:start"), {"topology": "pair"}).status_code == 302


def test_two_workers_with_different_node_names_share_experiments(workers, client, settings):
    settings.SANDBOX_RUNTIME = "in_process"  # two meshes at once, lighter on a shared machine
    workers.start("w1")
    workers.start("w2")
    first = start_from_site(client, UserFactory(username="first"))
    second_learner = UserFactory(username="second")
    second = start_from_site(client, second_learner, topology="shop")
    hosts = {wait_running(first).worker_host, wait_running(second).worker_host}
    assert hosts == {workers.node("w1"), workers.node("w2")}
    # The web tier needs no idea which host runs it: the shop's live numbers reach its page all the same.
    wait_for(lambda: snapshots_after(second.pk, 0), what="the shop's first snapshot")
    client.force_login(second_learner)
    graph = client.get(reverse("sandbox:live", args=[second.pk]), {"part": "graph"}).content.decode()
    assert 'data-node="payments"' in graph and "req/s" in graph


def test_the_queue_admits_the_next_learner_when_a_slot_frees(workers, client, settings):
    settings.SANDBOX_RUNTIME = "in_process"
    settings.SANDBOX_TOTAL_CAPACITY = 1
    workers.start("w1", capacity=1)
    ada, grace = UserFactory(username="ada-q"), UserFactory(username="grace-q")
    running = wait_running(start_from_site(client, ada))
    waiting = start_from_site(client, grace)
    place = selectors.queue_place(experiment=waiting)
    assert place.place == 1 and place.bound_seconds > 0
    status = client.get(reverse("sandbox:status", args=[waiting.pk])).content.decode()
    assert "number 1 in the queue" in status
    assert experiment_fresh(waiting.pk).status == "queued"

    client.force_login(ada)
    client.post(reverse("sandbox:stop", args=[running.pk]))
    wait_running(waiting)
    client.force_login(grace)
    # The waiting page stops polling its place in the queue: its live stream carries the rest.
    response = client.get(reverse("sandbox:status", args=[waiting.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 286 and "Running" in response.content.decode()


def test_the_request_timeline_shows_each_retry_attempt(workers, client, learner, settings):
    settings.SANDBOX_RUNTIME = "in_process"
    workers.start("w1")
    experiment = wait_running(start_from_site(client, learner))
    client.post(reverse("sandbox:command", args=[experiment.pk]), {"action": "fail"})

    def retried():
        return [
            record
            for snapshot in snapshots_after(experiment.pk, 0)
            for record in snapshot.recent
            if record.destination == "b" and len(record.attempts) > 1
        ]

    record = wait_for(retried, timeout=30, what="a request with more than one attempt")[0]
    assert record.attempts[1].backoff_ms > 0


@pytest.mark.parametrize(
    "limit,reason", [("MESHLEARN_SANDBOX_IDLE_TIMEOUT", "idle"), ("MESHLEARN_SANDBOX_LIFETIME", "deadline")]
)
def test_an_experiment_ends_by_itself_when_idle_or_past_its_lifetime(workers, client, learner, settings, limit, reason):
    settings.SANDBOX_RUNTIME = "in_process"
    workers.start("w1", environment={limit: "4"})
    experiment = start_from_site(client, learner)
    if reason == "deadline":
        # A page watches the whole time: only the lifetime can end it.
        from sandbox import services

        def watched_and_ended():
            services.viewer_present(experiment=experiment)
            return experiment_fresh(experiment.pk).status == "finished"

        wait_for(watched_and_ended, what="the lifetime to end it")
    else:
        wait_for(lambda: experiment_fresh(experiment.pk).status == "finished", what="the idle timeout to end it")
    assert experiment_fresh(experiment.pk).end_reason == reason


def test_stopping_the_worker_ends_its_experiment_cleanly(workers, client, learner):
    """bin/run's Ctrl-C: the pool process is signalled too; the mesh is torn down and the record says why."""
    workers.start("w1")
    experiment = wait_running(start_from_site(client, learner))
    pgid = wait_for(lambda: experiment_fresh(experiment.pk).pgid, what="the process group")
    workers.terminate("w1")
    ended = experiment_fresh(experiment.pk)
    assert (ended.status, ended.end_reason) == ("finished", "stopped: the site shut down")
    assert not processes.process_group_members(pgid)
