"""Real Celery workers for the sandbox tests: separate processes on the `sandbox` queue, sharing the test
database (a SQLite file) and the test Redis with the test process."""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

from meshlearn.celery import app
from sandbox import processes, streams
from sandbox.mesh.runtime.events import event_from_json
from sandbox.models import Experiment
from sandbox.testing import sandbox_worker_argv, web_server_argv

REPO = Path(__file__).resolve().parents[2]
WAIT = 60  # seconds: generous bounds for conditions on a loaded 2-core machine


def wait_for(condition, *, timeout: float = WAIT, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout} s")
        time.sleep(interval)


def worker_database_url() -> str:
    """The test database as a DATABASE_URL, so a worker or server process we start reads and writes the very
    database this test sees: the SQLite file, or PostgreSQL's test_<name> database (bin/test runs both)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "", safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def experiment_fresh(pk: int) -> Experiment:
    return Experiment.objects.get(pk=pk)


def events_of(pk: int) -> list:
    entries = streams.client().xrange(streams.events_key(pk))
    return [event_from_json(streams.event_json(fields)) for _, fields in entries]


class Workers:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: dict[str, subprocess.Popen] = {}

    def node(self, name: str) -> str:
        return f"{name}@{socket.gethostname()}"

    def start(self, name: str, *, capacity: int = 1, environment: dict | None = None) -> subprocess.Popen:
        env = {
            **os.environ,
            **(environment or {}),
            "DJANGO_SETTINGS_MODULE": "meshlearn.settings.test",
            "DATABASE_URL": worker_database_url(),
            "REDIS_URL": settings.REDIS_URL,
        }
        log = open(self.log_dir / f"worker-{name}-{len(self.started)}.log", "ab")
        process = subprocess.Popen(
            sandbox_worker_argv(node=self.node(name), capacity=capacity),
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.started[name] = process
        wait_for(lambda: app.control.ping(destination=[self.node(name)], timeout=0.5), what=f"worker {name}")
        return process

    def kill(self, name: str) -> None:
        """SIGKILL the worker and its pool: a lost machine, not a shutdown."""
        process = self.started.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def terminate(self, name: str) -> None:
        """SIGTERM to the worker and its pool, as honcho sends when bin/run gets Ctrl-C."""
        process = self.started.pop(name)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)

    def stop_all(self) -> None:
        for process in self.started.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process in self.started.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.started.clear()


@pytest.fixture
def clean_redis():
    client = redis.Redis.from_url(settings.REDIS_URL)
    # Stale sandbox messages and streams of earlier runs go; nothing else in this database is touched.
    stale = [*client.scan_iter("sandbox:*"), "sandbox"]
    client.delete(*stale)
    yield client
    client.close()


@pytest.fixture
def workers(transactional_db, clean_redis, tmp_path):
    pool = Workers(tmp_path)
    yield pool
    # Stop every experiment first so the workers shut down warm, then leave no mesh behind.
    for experiment in Experiment.objects.filter(status__in=Experiment.ACTIVE):
        from sandbox import services

        services.experiment_stop(experiment=experiment)
    try:
        wait_for(
            lambda: not Experiment.objects.filter(status__in=Experiment.OWNED).exists(),
            timeout=30,
            what="experiments to end",
        )
    except AssertionError:
        pass
    pool.stop_all()
    for experiment in Experiment.objects.exclude(pgid=None):
        processes.process_group_kill(experiment.pgid)


def dump(value) -> str:
    return json.dumps(value, default=str)[:2000]


@pytest.fixture
def asgi_server(transactional_db, tmp_path):
    """The site under uvicorn (ASGI, as bin/run serves it): the live view streams server-sent events."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "meshlearn.settings.test",
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": settings.REDIS_URL,
    }
    log = open(tmp_path / "uvicorn.log", "ab")
    process = subprocess.Popen(
        web_server_argv(port=port),
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_for(answers, what="uvicorn")
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
