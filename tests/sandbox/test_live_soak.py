"""The soak of bench/soak.py, shortened for the suite: one learner's experiment page kept open for a minute
against a real uvicorn, Redis and worker, its stream dropped and reopened every ten seconds. Nothing leaks:
no reader or Redis connection is left once the page goes, and uvicorn's memory stays flat (a generous bound:
a leak of one stream's state per reconnect would show)."""

import pytest
from django.conf import settings

from bench.soak import soak
from sandbox import services
from sandbox.models import Experiment
from tests.sandbox.conftest import wait_for
from tests.sandbox.live_support import session_cookie, uvicorn_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_a_page_open_for_a_minute_with_reconnects_leaks_no_stream_connection_or_memory(workers, learner, tmp_path):
    workers.start("w1", environment={"MESHLEARN_SANDBOX_RUNTIME": "in_process"})
    experiment = services.experiment_start(user=learner, topology="pair")
    wait_for(lambda: Experiment.objects.get(pk=experiment.pk).status == "running", what="the mesh to run")
    with uvicorn_server(tmp_path) as (port, pid):
        result = soak(
            port=port,
            uvicorn_pid=pid,
            redis_url=settings.REDIS_URL,
            experiment_id=experiment.pk,
            cookie=session_cookie(learner),
            duration=60,
            reconnect=10,
            sample=5,
            log=lambda line: None,
        )
    summary = result.summary()
    assert result.reconnects >= 4 and result.refused_streams == 0, summary
    assert result.events_received > 20, summary  # the page really was live throughout
    assert result.end_readers <= result.baseline_readers, summary
    assert result.end_connections <= result.baseline_connections, summary
    assert result.rss_growth_mb < 30, summary
    # The page kept the experiment watched all along: it did not idle out under it.
    assert Experiment.objects.get(pk=experiment.pk).status == "running"
