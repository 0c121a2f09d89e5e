"""The live stream ends when its page goes: against a real uvicorn, a real Redis and a real Celery worker
running a mesh, streams whose sockets the client closed leave no reader blocked in Redis, no connection
open, and stop renewing the viewer key (so an abandoned experiment idles out). Beyond the per-learner and
per-experiment caps a stream is refused with a 429 that says the page keeps updating by polling."""

import pytest
import redis
from django.conf import settings

from sandbox import services, streams
from sandbox.models import Experiment
from tests.sandbox.conftest import wait_for
from tests.sandbox.live_support import (
    open_stream,
    read_all,
    read_until,
    redis_clients,
    session_cookie,
    uvicorn_server,
    xread_clients,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def stream_path(experiment: Experiment) -> str:
    return f"/sandbox/experiments/{experiment.pk}/stream/"


@pytest.fixture
def running(workers, learner):
    """The learner's experiment, running on a real worker (one event loop: the lightest real mesh)."""
    workers.start("w1", environment={"MESHLEARN_SANDBOX_RUNTIME": "in_process"})
    experiment = services.experiment_start(user=learner, topology="pair")
    wait_for(lambda: Experiment.objects.get(pk=experiment.pk).status == "running", what="the mesh to run")
    # Snapshots are flowing: the streams below have events to send while they are open.
    wait_for(lambda: streams.client().xlen(streams.events_key(experiment.pk)) >= 3, what="the first snapshots")
    return experiment


def test_fifty_closed_streams_leave_no_reader_no_connection_and_stop_renewing_the_viewer_key(
    running, learner, tmp_path
):
    cookie = session_cookie(learner)
    # The caps are raised here so that one experiment can have fifty streams, as in the report.
    caps = {"MESHLEARN_SANDBOX_STREAMS_PER_LEARNER": "60", "MESHLEARN_SANDBOX_STREAMS_PER_EXPERIMENT": "60"}
    with uvicorn_server(tmp_path, environment=caps) as (port, _pid):
        readers_before = xread_clients()  # the worker's own command reader
        connections_before = len(redis_clients())
        sockets = []
        for _ in range(50):
            sock, status, rest = open_stream(port, stream_path(running), cookie)
            assert status == 200
            assert b"event: graph" in read_until(sock, b"event: graph", rest)  # live, with the mesh's numbers
            sockets.append(sock)
        wait_for(lambda: xread_clients() >= readers_before + 50, what="every stream to read from Redis")
        # The learner steers the mesh: each applied command makes every stream re-read the record, and the
        # pages close while they do (a disconnect during a database read was swallowed, and the stream ran on).
        for _ in range(6):
            services.command_send(experiment=running, command={"action": "heal"})
        wait_for(lambda: running.commands.filter(outcome="applied").count() >= 3, what="commands to be applied")
        for sock in sockets:
            sock.close()

        wait_for(lambda: xread_clients() <= readers_before, what="no stream's XREAD reader left in Redis")
        wait_for(lambda: len(redis_clients()) <= connections_before, what="Redis connections back to the baseline")
        # Nobody watches any more: the viewer key expires instead of being renewed.
        viewer = redis.Redis.from_url(settings.REDIS_URL)
        try:
            wait_for(
                lambda: not viewer.exists(streams.viewer_key(running.pk)),
                timeout=settings.SANDBOX_VIEWER_TTL + 45,
                what="the viewer key to expire",
            )
        finally:
            viewer.close()


def test_streams_beyond_the_learners_cap_get_a_429_that_says_the_page_polls(running, learner, tmp_path):
    cookie = session_cookie(learner)
    with uvicorn_server(tmp_path) as (port, _pid):
        admitted = []
        for _ in range(settings.SANDBOX_STREAMS_PER_LEARNER):
            sock, status, _rest = open_stream(port, stream_path(running), cookie)
            assert status == 200
            admitted.append(sock)
        refused, status, rest = open_stream(port, stream_path(running), cookie)
        body = read_all(refused, rest).decode()
        refused.close()
        assert status == 429
        assert f"You already have {settings.SANDBOX_STREAMS_PER_LEARNER} live sandbox pages open" in body
        assert "updates every few seconds instead" in body

        # A page that goes frees its slot: the next one is live again.
        admitted.pop().close()

        def admitted_again() -> bool:
            sock, status, _rest = open_stream(port, stream_path(running), cookie)
            if status == 200:
                admitted.append(sock)
                return True
            sock.close()
            return False

        wait_for(admitted_again, interval=1, what="a freed slot to admit a stream")
        for sock in admitted:
            sock.close()
