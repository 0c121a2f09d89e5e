"""Every sandbox and lab URL in every state an experiment or a lab can be in: each answers 200 (or 286, htmx's
"stop polling") or a clear 4xx, never a 5xx, and its body offers the learner's next step: a Stop button, a
wait message, a Start again button.

One real Celery worker runs one real experiment for the running cells (reused by every URL, so the module stays
fast); the states that are hard to catch live (starting, stopping) and the ended ones are set on records. The
records are committed as a live site's would be (no test transaction: the worker is another process writing
the same database), and the module empties the database when it is done, as a transactional test does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import redis
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from labs import services as lab_services
from labs.models import Lab, LabProgress
from sandbox import processes, services
from sandbox.models import Experiment, ExperimentCommand
from tests.factories import UserFactory

from .conftest import Workers, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
LAB = "abort-fault"  # a pair lab; step 1's first button is "b fails 50% with 503"
WAIT = 90  # seconds: the real experiment to run and take the lab's starting policy on a loaded machine

# ----------------------------------------------------------------------------- the states


def _record(name: str, **fields) -> Experiment:
    now = timezone.now()
    defaults = {"topology": "pair", "runtime": "in_process"}
    if fields.get("status") in Experiment.OWNED:
        defaults.update(worker_host="w0@nowhere", heartbeat_at=now, started_at=now)
    if fields.get("status") in ("finished", "failed"):
        defaults.update(started_at=now, ended_at=now)
    return Experiment.objects.create(owner=UserFactory(username=name), **{**defaults, **fields})


RECORD_STATES = {
    "queued": {"status": "queued"},
    "starting": {"status": "starting"},
    "stopping": {"status": "stopping"},
    "finished": {"status": "finished", "end_reason": "stopped"},
    "failed": {"status": "failed", "end_reason": "the experiment ended without saying why"},
    "failed-worker-lost": {"status": "failed", "end_reason": "worker lost"},
    "idle-ended": {"status": "finished", "end_reason": "idle"},
}
STATES = ["queued", "starting", "running", "stopping", "finished", "failed", "failed-worker-lost", "idle-ended"]

# What each state's page and fragments say: the learner's next step is in there.
STATUS_WORDS = {
    "queued": "Waiting for a free slot",
    "starting": "Starting the mesh",
    "running": "Running",
    "stopping": "Stopping",
    "finished": "Ended</span>: you stopped it",
    "failed": "Failed</span>: the experiment ended without saying why",
    "failed-worker-lost": "Failed</span>: the machine running it stopped answering",
    "idle-ended": "Ended</span>: no page had it open",
}
ACTIVE_STATES = {"queued", "starting", "running", "stopping"}
START_ANOTHER = "Start another"
STOP_BUTTON = "Stop the experiment"


@dataclass
class Lab_:
    """A learner at one phase of the lab, and the experiment under it (if any)."""

    user: object
    experiment: Experiment | None


LAB_PHASES = [
    "not-predicted",
    "predicted",
    "starting-queued",
    "starting-starting",
    "running",
    "stopping",
    "refused",
    "ended-idle",
    "ended-stopped",
    "ended-worker-lost",
    "ended-failed",
    "unavailable",
    "complete",
]


class World:
    def __init__(self) -> None:
        self.experiments: dict[str, Experiment] = {}
        self.labs: dict[str, Lab_] = {}


def _predict(user, lab: Lab) -> LabProgress:
    right = lab.prediction.options.get(is_correct=True)
    lab_services.prediction_submit(user=user, lab=lab, option_public_id=str(right.public_id))
    return LabProgress.objects.get(user=user, lab=lab)


def _lab_on(name: str, lab: Lab, *, record: dict | None, outcome: str = "sent", complete: bool = False) -> Lab_:
    """A learner whose lab was started on an experiment in the given state (a record; no worker runs it)."""
    experiment = _record(f"lab-{name}", **record) if record else None
    user = experiment.owner if experiment else UserFactory(username=f"lab-{name}")
    progress = _predict(user, lab)
    if experiment is not None:
        command = ExperimentCommand.objects.create(
            experiment=experiment,
            command=lab.start_commands[-1],
            description="the lab's starting policy",
            outcome=outcome,
            answer="policy: b has no such field" if outcome == "refused" else "",
            t=2.0 if outcome == "applied" else None,
        )
        progress.experiment_id = experiment.pk
        progress.start_command_id = str(command.pk)
        progress.started_t = 2.0 if outcome == "applied" else None
        if complete:
            progress.checks_state = {
                "passed": {
                    check["name"]: {"at": 9.0, "observed": {"effective success at the entry": "48%"}}
                    for check in lab.checks
                }
            }
            progress.completed_at = timezone.now()
        progress.save()
    return Lab_(user, experiment)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock(), override_settings(SANDBOX_RUNTIME="in_process"):
        connection = redis.Redis.from_url(settings.REDIS_URL)
        connection.delete("sandbox", *connection.scan_iter("sandbox:*"))
        call_command("load_course", verbosity=0)
        lab = Lab.objects.get(slug=LAB)
        world = World()
        workers = Workers(tmp_path_factory.mktemp("workers"))
        try:
            workers.start("matrix", capacity=1)
            # The running cells: a real experiment on the real worker, started as a lab starts it.
            runner = UserFactory(username="lab-running")
            progress = _predict(runner, lab)
            lab_services.lab_start(user=runner, lab=lab)
            wait_for(
                lambda: (
                    lab_services.lab_status_refresh(progress=LabProgress.objects.get(pk=progress.pk)).phase == "running"
                ),
                timeout=WAIT,
                what="the lab's experiment to run with its starting policy applied",
            )
            world.experiments["running"] = Experiment.objects.get(
                pk=LabProgress.objects.get(pk=progress.pk).experiment_id
            )
            world.labs["running"] = Lab_(runner, world.experiments["running"])
            # Only now the records: a queued one made before the worker started would be sent to it (requeue).
            for state, fields in RECORD_STATES.items():
                world.experiments[state] = _record(f"sandbox-{state}", **fields)

            world.labs["not-predicted"] = Lab_(UserFactory(username="lab-not-predicted"), None)
            world.labs["predicted"] = _lab_on("predicted", lab, record=None)
            world.labs["starting-queued"] = _lab_on("starting-queued", lab, record={"status": "queued"})
            world.labs["starting-starting"] = _lab_on("starting-starting", lab, record={"status": "starting"})
            world.labs["stopping"] = _lab_on("stopping", lab, record={"status": "stopping"}, outcome="applied")
            world.labs["refused"] = _lab_on("refused", lab, record={"status": "running"}, outcome="refused")
            world.labs["ended-idle"] = _lab_on("ended-idle", lab, record=RECORD_STATES["idle-ended"], outcome="applied")
            world.labs["ended-stopped"] = _lab_on("ended-stopped", lab, record=RECORD_STATES["finished"])
            world.labs["ended-worker-lost"] = _lab_on(
                "ended-worker-lost", lab, record=RECORD_STATES["failed-worker-lost"], outcome="applied"
            )
            world.labs["ended-failed"] = _lab_on("ended-failed", lab, record=RECORD_STATES["failed"])
            world.labs["unavailable"] = _lab_on("unavailable", lab, record={"status": "running"}, outcome="applied")
            world.labs["complete"] = _lab_on(
                "complete", lab, record=RECORD_STATES["idle-ended"], outcome="applied", complete=True
            )
            yield world
        finally:
            for experiment in Experiment.objects.filter(status__in=Experiment.ACTIVE):
                services.experiment_stop(experiment=experiment)
            try:
                wait_for(
                    lambda: (
                        not Experiment.objects.filter(
                            status__in=Experiment.OWNED, worker_host=workers.node("matrix")
                        ).exists()
                    ),
                    timeout=30,
                    what="the worker's experiments to end",
                )
            except AssertionError:
                pass
            workers.stop_all()
            for experiment in Experiment.objects.exclude(pgid=None):
                processes.process_group_kill(experiment.pgid)
            connection.delete("sandbox", *connection.scan_iter("sandbox:*"))
            connection.close()
            # As a transactional test leaves it: no row of this module is seen by the next one.
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def db(django_db_blocker):
    """This module's `db`: requests commit as on a live site, with no test transaction around them (the worker,
    another process, must see what they write, and a transaction held open on SQLite would block its writes).
    Named `db` so that pytest-django still creates the test database for these tests."""
    with django_db_blocker.unblock():
        yield


# ----------------------------------------------------------------------------- the lab's URLs

# What the lab's check panel says in each phase: where the learner stands and what to do next.
LAB_WORDS = {
    "not-predicted": "Lock in my prediction",
    "predicted": "The checks run once the lab is started.",
    "starting-queued": "The mesh is starting and taking the lab",
    "starting-starting": "The mesh is starting and taking the lab",
    "running": 'class="check check-current"',
    "stopping": "Your mesh for this lab is stopping. Once it has stopped you can start the lab again.",
    "refused": "The mesh refused the lab",
    "ended-idle": "Your mesh for this lab has stopped: no page had it open",
    "ended-stopped": "Your mesh for this lab has stopped: you stopped it",
    "ended-worker-lost": "Your mesh for this lab has stopped: the machine running it stopped answering",
    "ended-failed": "Your mesh for this lab has stopped: the experiment ended without saying why",
    "unavailable": "The live mesh cannot be reached right now; the checks go on when it is back.",
    "complete": "Lab complete",
}
ENDED_PHASES = {"ended-idle", "ended-stopped", "ended-worker-lost", "ended-failed", "complete"}
LIVE_PHASES = {"starting-queued", "starting-starting", "running", "refused", "unavailable"}

# What pressing a step's button answers in each phase.
PRESS = {
    "not-predicted": (400, "Answer the prediction and start the lab first."),
    "predicted": (400, "mesh is not running. Start the lab, then press the button again."),
    "stopping": (400, "This experiment has ended; start a new one to try that."),
    "unavailable": (400, "nothing was sent. Try again in a few seconds."),
    **{phase: (400, "mesh is not running. Start the lab, then press the button again.") for phase in ENDED_PHASES},
    **{phase: (200, "Sent: b fails 50% with 503") for phase in ("starting-queued", "starting-starting", "running")},
    "refused": (200, "Sent: b fails 50% with 503"),
}
# What starting (again) answers.
START = {
    "not-predicted": (400, "Answer the prediction first"),
    "stopping": (400, "This experiment has ended; start a new one to try that."),
    "unavailable": (400, "Try again in a few seconds."),
}

LAB_URLS = ["detail", "status", "press", "start"]
LAB_CELLS = [(phase, url) for phase in LAB_PHASES for url in LAB_URLS if phase != "running"] + [
    ("running", url) for url in LAB_URLS
]


@pytest.fixture
def redis_down(settings):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        settings.REDIS_URL = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"


@pytest.mark.parametrize("phase,url", LAB_CELLS, ids=[f"{phase}-{url}" for phase, url in LAB_CELLS])
def test_every_lab_url_in_every_lab_phase(world, db, client, request, phase, url):
    learner = world.labs[phase]
    if phase == "unavailable":
        request.getfixturevalue("redis_down")
    client.force_login(learner.user)
    path = reverse(f"labs:{url}", args=[LAB])

    if url in ("detail", "status"):
        response = client.get(path, HTTP_HX_REQUEST="true") if url == "status" else client.get(path)
        body = response.content.decode()
        assert response.status_code == 200, body[:500]
        words = LAB_WORDS[phase]
        if url == "status" and phase == "not-predicted":
            words = "The checks run once the lab is started."
        assert words in body, body[:3000]
        polls = 'hx-trigger="every 2s"' in body
        assert polls == (phase in LIVE_PHASES - {"refused"} or phase == "stopping"), "polls only while it may change"
        if phase in ENDED_PHASES:
            assert "Start again" in body
        if url == "detail" and phase not in ("not-predicted",):
            assert "Start the lab" in body
    elif url == "press":
        response = client.post(path, {"step": "1", "action": "0"}, HTTP_HX_REQUEST="true")
        body = response.content.decode()
        expected_status, words = PRESS[phase]
        assert response.status_code == expected_status, body[:500]
        assert words in body, body[:500]
    elif url == "start":
        response = client.post(path, HTTP_HX_REQUEST="true")
        body = response.content.decode()
        expected_status, words = START.get(phase, (200, "The mesh is starting and taking the lab"))
        assert response.status_code == expected_status, body[:500]
        # the real worker may already have applied the starting policy again by the time the page renders
        assert words in body or (phase == "running" and 'class="check check-current"' in body), body[:3000]
        if expected_status == 200:
            progress = LabProgress.objects.get(user=learner.user, lab__slug=LAB)
            now_on = Experiment.objects.get(pk=progress.experiment_id)
            assert now_on.is_active, "starting (again) leaves the lab on a live experiment"
            if phase in ENDED_PHASES:
                assert now_on.pk != learner.experiment.pk, "an ended experiment is not reused"
    assert response.status_code < 500


# ----------------------------------------------------------------------------- the sandbox's URLs


def _stream_start(response) -> str:
    """The stream's first events up to its first status (a live stream never ends by itself)."""

    async def read() -> str:
        chunks = response.streaming_content
        seen = []
        try:
            async for chunk in chunks:
                text = chunk.decode() if isinstance(chunk, bytes) else chunk
                seen.append(text)
                if text.startswith("event: status") or text.startswith("event: finished"):
                    break
        finally:
            await chunks.aclose()
        return "".join(seen)

    return async_to_sync(read)()


SANDBOX_URLS = ["experiment", "status", "live", "stream", "command", "stop"]
# Destructive cells last (the running experiment is shared): commands, then stop, and running's stop at the end.
SANDBOX_CELLS = [(state, url) for state in STATES for url in SANDBOX_URLS if (state, url) != ("running", "stop")] + [
    ("running", "stop")
]


@pytest.mark.parametrize("state,url", SANDBOX_CELLS, ids=[f"{state}-{url}" for state, url in SANDBOX_CELLS])
def test_every_sandbox_url_in_every_experiment_state(world, db, client, state, url):
    experiment = world.experiments[state]
    experiment.refresh_from_db()
    client.force_login(experiment.owner)
    path = reverse(f"sandbox:{url}", args=[experiment.pk])
    words = STATUS_WORDS[state]
    active = state in ACTIVE_STATES

    if url == "experiment":
        response = client.get(path)
        body = response.content.decode()
        assert response.status_code == 200, body[:500]
        assert words in body
        assert (STOP_BUTTON in body) if active else (START_ANOTHER in body and STOP_BUTTON not in body)
    elif url == "status":
        response = client.get(path, HTTP_HX_REQUEST="true")
        body = response.content.decode()
        # 286: a worker has it (or it ended), the page stops polling and its live stream says the rest
        assert response.status_code == (200 if state == "queued" else 286), body[:500]
        assert words in body
        if state == "queued":
            assert "You are number 1 in the queue" in body and "This page starts the experiment by itself" in body
        if not active:
            assert START_ANOTHER in body
    elif url == "live":
        response = client.get(path)
        # 286 once it ended: a polling page stops and reloads to the final numbers
        assert response.status_code == (200 if active else 286)
        fragments = json.loads(response.content)
        assert words in fragments["status"]
        assert set(fragments) >= {"status", "graph", "metrics", "log", "commands"}
    elif url == "stream":
        response = client.get(path)
        assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
        body = _stream_start(response)
        if active:
            assert body.count("event: status") == 1 and words in body, body[:1000]
        else:
            assert "event: finished" in body and "See the final numbers" in body, body[:1000]
    elif url == "command":
        response = client.post(path, {"action": "fail"}, HTTP_HX_REQUEST="true")
        body = response.content.decode()
        if state in ("queued", "starting", "running"):
            assert response.status_code == 200, body[:500]
            # in the learner's list, waiting for (or with) the engine's answer
            assert "fails 50% of requests with 503" in body
        else:
            assert response.status_code == 400, body[:500]
            assert "This experiment has ended; start a new one to try that." in body
    elif url == "stop":
        response = client.post(path, follow=True)
        body = response.content.decode()
        assert response.status_code == 200, body[:500]
        after = Experiment.objects.get(pk=experiment.pk)
        if state == "queued":
            assert after.status == "finished" and "it was stopped before it started" in body
            assert START_ANOTHER in body
        elif state in ("starting", "stopping"):
            assert after.status == "stopping" and "Stopping" in body
        elif state == "running":
            # the real worker tears the mesh down; the page says it is stopping, or already that it ended
            assert after.status in ("stopping", "finished") and ("Stopping" in body or START_ANOTHER in body)
            wait_for(lambda: Experiment.objects.get(pk=experiment.pk).status == "finished", what="it to end")
            page = client.get(reverse("sandbox:experiment", args=[experiment.pk])).content.decode()
            assert "Ended</span>: you stopped it" in page and START_ANOTHER in page
        else:
            assert after.status == experiment.status and words in body and START_ANOTHER in body
