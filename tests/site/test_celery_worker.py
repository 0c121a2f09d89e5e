"""A real Celery worker consumes tasks from the real Redis broker."""

import pytest
from celery.contrib.testing.worker import start_worker

from meshlearn.celery import app
from meshlearn.tasks import ping


@pytest.mark.integration
def test_a_real_worker_runs_a_task_through_redis():
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        assert ping.delay().get(timeout=20) == "pong"
