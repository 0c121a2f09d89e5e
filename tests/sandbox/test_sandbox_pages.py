"""Sandbox pages, limits and records without a worker: ownership (404), one experiment per learner, the
start rate limit, command validation, stopping a queued experiment, the janitor, and Celery settings."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from meshlearn.celery import app
from sandbox import records, selectors, services
from sandbox.models import Experiment
from sandbox.tasks import run_experiment


@pytest.fixture
def running(learner):
    return Experiment.objects.create(
        owner=learner,
        topology="pair",
        status="running",
        worker_host="w1@nowhere",
        heartbeat_at=timezone.now(),
        started_at=timezone.now(),
    )


@pytest.mark.parametrize(
    "name,method",
    [
        ("experiment", "get"),
        ("status", "get"),
        ("live", "get"),
        ("stream", "get"),
        ("command", "post"),
        ("stop", "post"),
    ],
)
def test_another_learner_gets_404_on_every_url_of_an_experiment(client, running, other_learner, name, method):
    client.force_login(other_learner)
    response = getattr(client, method)(reverse(f"sandbox:{name}", args=[running.pk]), {"action": "fail"})
    assert response.status_code == 404
    assert Experiment.objects.get(pk=running.pk).status == "running"


def test_a_double_start_gives_one_experiment(learner):
    first = services.experiment_start(user=learner, topology="pair")
    second = services.experiment_start(user=learner, topology="shop")
    assert first.pk == second.pk
    assert Experiment.objects.filter(owner=learner).count() == 1


def test_the_database_refuses_a_second_active_experiment(learner, running):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Experiment.objects.create(owner=learner, topology="pair", status="queued")


def test_starts_are_rate_limited_with_a_message_that_says_what_to_do(learner, settings):
    settings.SANDBOX_STARTS_PER_WINDOW = 2
    for _ in range(2):
        Experiment.objects.create(owner=learner, topology="pair", status="finished")
    with pytest.raises(services.TooManyStarts, match="Wait a few minutes"):
        services.experiment_start(user=learner, topology="pair")


def test_an_unknown_topology_is_refused_by_name(client, learner):
    client.force_login(learner)
    response = client.post(reverse("sandbox:start"), {"topology": "mars"}, follow=True)
    assert "topology: choose one of pair, shop" in response.content.decode()
    assert not Experiment.objects.exists()


def test_a_command_the_engine_refuses_says_why_and_is_not_sent(learner, running):
    with pytest.raises(services.CommandInvalid) as refused:
        services.command_send(experiment=running, command={"action": "fail", "service": "nope", "percent": 50})
    assert "service" in str(refused.value)
    assert not running.commands.exists()


def test_an_unknown_action_of_the_panel_is_a_400_with_a_message(client, learner, running):
    client.force_login(learner)
    response = client.post(reverse("sandbox:command", args=[running.pk]), {"action": "explode"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "action: choose one of the buttons" in response.content.decode()


def test_a_command_to_an_ended_experiment_is_refused(client, learner):
    ended = Experiment.objects.create(owner=learner, topology="pair", status="finished", end_reason="stopped")
    client.force_login(learner)
    response = client.post(reverse("sandbox:command", args=[ended.pk]), {"action": "fail"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "has ended" in response.content.decode()


def test_stopping_a_queued_experiment_ends_it_and_frees_the_learner(learner):
    queued = services.experiment_start(user=learner, topology="pair")
    services.experiment_stop(experiment=queued)
    queued.refresh_from_db()
    assert queued.status == "finished" and queued.end_reason == "stopped before it started"
    # The worker that later takes its message does nothing.
    assert records.experiment_claim(experiment_id=queued.pk, host="w1@here") is None


def test_stop_twice_asks_the_worker_to_stop_and_the_experiment_stays_stopping(client, learner, running, clean_redis):
    from sandbox import streams

    client.force_login(learner)
    for _ in range(2):
        response = client.post(reverse("sandbox:stop", args=[running.pk]), HTTP_HX_REQUEST="true")
        assert response.status_code == 200
    assert Experiment.objects.get(pk=running.pk).status == "stopping"
    commands = [
        streams.decode_command(fields, experiment_id=running.pk)[1]
        for _, fields in clean_redis.xrange(streams.commands_key(running.pk))
    ]
    assert commands and all(command == {"action": streams.STOP} for command in commands)


def test_stopping_an_ended_experiment_changes_nothing_and_leaves_nothing_in_redis(client, learner, clean_redis):
    from sandbox import streams

    ended = Experiment.objects.create(owner=learner, topology="pair", status="finished", end_reason="stopped")
    client.force_login(learner)
    response = client.post(reverse("sandbox:stop", args=[ended.pk]))
    assert response.status_code == 302
    ended.refresh_from_db()
    assert (ended.status, ended.end_reason) == ("finished", "stopped")
    assert not clean_redis.exists(streams.commands_key(ended.pk))


def test_the_end_is_recorded_when_redis_is_already_gone(running, settings):
    # Ctrl-C on bin/run stops Redis beside the worker: the record must still say how the experiment ended.
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        settings.REDIS_URL = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    sent = running.commands.create(command={"action": "heal"}, description="heal everything")
    records.experiment_finish(experiment_id=running.pk, reason="stopped: the site shut down", result={"requests": 3})
    running.refresh_from_db()
    assert running.status == "finished" and running.end_reason == "stopped: the site shut down"
    assert running.result == {"requests": 3}
    sent.refresh_from_db()
    assert sent.outcome == "refused" and "ended before" in sent.answer


def test_the_janitor_fails_an_experiment_whose_heartbeat_stopped(running, settings):
    from sandbox import streams

    sent = running.commands.create(command={"action": "heal"}, description="heal everything")
    connection = streams.client()
    connection.xadd(streams.events_key(running.pk), {"event": "{}"})
    Experiment.objects.filter(pk=running.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.SANDBOX_HEARTBEAT_TIMEOUT + 5)
    )
    assert records.experiments_reap(host="elsewhere") == [running.pk]
    running.refresh_from_db()
    assert running.status == "failed" and running.end_reason == "worker lost"
    sent.refresh_from_db()
    assert sent.outcome == "refused" and "ended before" in sent.answer
    assert 0 < connection.ttl(streams.events_key(running.pk)) <= settings.SANDBOX_STREAM_TTL


def test_the_janitor_leaves_a_live_experiment_alone(running):
    assert records.experiments_reap(host="elsewhere") == []


def test_instructors_see_running_experiments_and_can_stop_them(client, instructor, running):
    client.force_login(instructor)
    listing = client.get(reverse("admin:sandbox_experiment_changelist"))
    assert listing.status_code == 200 and "ada" in listing.content.decode()
    client.post(
        reverse("admin:sandbox_experiment_changelist"), {"action": "stop_experiments", "_selected_action": [running.pk]}
    )
    assert Experiment.objects.get(pk=running.pk).status == "stopping"


def test_long_running_task_settings_took_effect():
    """No redelivery of a running experiment: visibility timeout > hard limit > soft limit > lifetime."""
    from django.conf import settings

    assert run_experiment.acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_routes["sandbox.run_experiment"]["queue"] == "sandbox"
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert visibility > run_experiment.time_limit > run_experiment.soft_time_limit > settings.SANDBOX_LIFETIME
    assert settings.SANDBOX_IDLE_TIMEOUT < settings.SANDBOX_LIFETIME
    assert "sandbox-janitor" in app.conf.beat_schedule
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0


def test_the_sandbox_is_linked_from_the_nav_and_the_course_home(client, learner):
    client.force_login(learner)
    page = client.get(reverse("lessons:course")).content.decode()
    assert page.count(reverse("sandbox:index")) >= 2
    assert "coming" not in page


@pytest.mark.parametrize("topology", ["pair", "shop"])
def test_every_action_of_the_panel_is_a_command_the_engine_accepts(topology):
    from sandbox.actions import actions_for
    from sandbox.mesh.runtime.commands import parse_command

    shipped = selectors.topology_get(topology)
    for action in actions_for(shipped):
        parse_command(action.command, shipped)  # raises CommandError naming the field


def test_the_stream_of_an_ended_experiment_tells_the_page_to_show_the_final_numbers(client, learner):
    """A page that was still live when its experiment ended must learn it (not retry a 404 forever)."""
    from asgiref.sync import async_to_sync

    ended = Experiment.objects.create(owner=learner, topology="pair", status="finished", end_reason="stopped")
    client.force_login(learner)
    response = client.get(reverse("sandbox:stream", args=[ended.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"

    async def collect():
        return b"".join([chunk async for chunk in response.streaming_content]).decode()

    body = async_to_sync(collect)()
    assert "event: finished" in body and "The experiment ended: stopped" in body


def test_the_stream_of_a_queued_experiment_keeps_the_place_in_the_queue(client, learner, clean_redis):
    """The stream's first status replaces the page's: it must not drop the place the page showed."""
    from asgiref.sync import async_to_sync

    queued = services.experiment_start(user=learner, topology="pair")
    client.force_login(learner)
    response = client.get(reverse("sandbox:stream", args=[queued.pk]))

    async def first_status():
        chunks = response.streaming_content
        try:
            async for chunk in chunks:
                text = chunk.decode() if isinstance(chunk, bytes) else chunk
                if text.startswith("event: status"):
                    return text
        finally:
            await chunks.aclose()

    status = async_to_sync(first_status)()
    assert "You are number 1 in the queue" in status


def test_the_fragments_can_be_polled_and_a_bad_part_is_named(client, learner):
    ended = Experiment.objects.create(
        owner=learner,
        topology="pair",
        status="finished",
        end_reason="stopped",
        result={"history": [{"t": 1.0, "rps": 20, "effective": 0.5, "actual": 0.5, "p50": 1, "p95": 2, "p99": 3}]},
    )
    client.force_login(learner)
    graph = client.get(reverse("sandbox:live", args=[ended.pk]), {"part": "graph"})
    assert graph.status_code == 200 and "<svg" in graph.content.decode()
    everything = client.get(reverse("sandbox:live", args=[ended.pk])).json()
    assert set(everything) == {"status", "graph", "metrics", "requests", "breaker", "log", "commands"}
    assert "50%" in everything["metrics"]
    bad = client.get(reverse("sandbox:live", args=[ended.pk]), {"part": "nope"})
    assert bad.status_code == 400 and "part: choose one of" in bad.content.decode()


def test_a_refusal_from_the_engine_reaches_the_learners_command_list_in_its_words(client, learner, running):
    sent = running.commands.create(command={"action": "deny", "service": "b", "source": "a"}, description="deny a -> b")
    records.experiment_event_record(
        experiment_id=running.pk,
        kind="refused",
        t=3.5,
        data={"id": str(sent.pk), "reason": "authorization: b has no sidecar"},
    )
    sent.refresh_from_db()
    assert (sent.outcome, sent.answer, sent.t) == ("refused", "authorization: b has no sidecar", 3.5)
    client.force_login(learner)
    page = client.get(running.get_absolute_url()).content.decode()
    assert "refused</strong>: authorization: b has no sidecar" in page


def test_an_experiment_stopped_before_it_started_does_not_promise_numbers(client, learner):
    stopped = services.experiment_start(user=learner, topology="pair")
    services.experiment_stop(experiment=stopped)
    client.force_login(learner)
    page = client.get(reverse("sandbox:experiment", args=[stopped.pk])).content.decode()
    assert "stopped before it started" in page
    assert "ended before it reported any numbers" in page
    assert "first numbers arrive" not in page


@pytest.fixture
def redis_down(settings):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        settings.REDIS_URL = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"


def test_a_command_redis_cannot_carry_says_so_and_is_not_listed_as_sent(client, learner, running, redis_down):
    client.force_login(learner)
    response = client.post(reverse("sandbox:command", args=[running.pk]), {"action": "fail"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "nothing was sent. Try again in a few seconds" in response.content.decode()
    assert not running.commands.exists()


def test_a_stop_redis_cannot_carry_says_so_and_changes_nothing(client, learner, running, redis_down):
    client.force_login(learner)
    response = client.post(reverse("sandbox:stop", args=[running.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 503
    assert "was not stopped. Try again in a few seconds" in response.content.decode()
    assert Experiment.objects.get(pk=running.pk).status == "running"
    page = client.post(reverse("sandbox:stop", args=[running.pk]), follow=True)
    assert "was not stopped" in page.content.decode()


@pytest.mark.parametrize("name", ["experiment", "status", "live"])
def test_a_live_page_without_redis_is_a_503_that_says_to_reload(client, learner, running, redis_down, name):
    client.force_login(learner)
    response = client.get(reverse(f"sandbox:{name}", args=[running.pk]))
    assert response.status_code == 503
    assert "Reload this page in a few seconds" in response.content.decode()


def test_an_ended_experiment_page_needs_no_redis(client, learner, redis_down):
    ended = Experiment.objects.create(owner=learner, topology="pair", status="finished", end_reason="stopped")
    client.force_login(learner)
    assert client.get(reverse("sandbox:experiment", args=[ended.pk])).status_code == 200


def test_the_admin_says_which_stops_did_not_reach_the_worker(client, instructor, running, redis_down):
    client.force_login(instructor)
    response = client.post(
        reverse("admin:sandbox_experiment_changelist"),
        {"action": "stop_experiments", "_selected_action": [running.pk]},
        follow=True,
    )
    assert "1 experiment(s) could not be told to stop" in response.content.decode()
    assert Experiment.objects.get(pk=running.pk).status == "running"


def test_a_start_the_broker_cannot_take_fails_at_once_and_says_what_to_do(
    client, learner, monkeypatch, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    def broker_down(*args, **kwargs):  # the neighbour: Celery's publish to a Redis that refuses connections
        raise OperationalError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")

    monkeypatch.setattr(run_experiment, "delay", broker_down)
    client.force_login(learner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("sandbox:start"), {"topology": "pair"})
    experiment = Experiment.objects.get(owner=learner)
    assert response.status_code == 302 and response["Location"] == experiment.get_absolute_url()
    assert experiment.status == "failed" and "start again in a minute" in experiment.end_reason
    page = client.get(experiment.get_absolute_url()).content.decode()
    assert "start again in a minute" in page
    # The learner is free to start again.
    assert not Experiment.objects.filter(owner=learner, status__in=Experiment.ACTIVE).exists()
