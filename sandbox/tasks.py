"""Celery tasks of the sandbox: one task runs one experiment (queue "sandbox"); the janitor reaps lost ones.

Long tasks on the Redis broker: the task is acknowledged late (so a worker holds only the experiments it
runs, prefetch one) and the broker's visibility timeout sits above the task's hard time limit, which sits
above the experiment's own lifetime. A message redelivered anyway finds its experiment no longer queued and
does nothing: a sandbox for a learner who left is worse than none.
"""

import asyncio
import logging
import socket

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import close_old_connections

from . import records, requeue
from .runner import ExperimentRunner

log = logging.getLogger(__name__)


@shared_task(
    name="sandbox.run_experiment",
    bind=True,
    acks_late=True,
    ignore_result=True,
    soft_time_limit=settings.SANDBOX_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.SANDBOX_TASK_TIME_LIMIT,
)
def run_experiment(self, experiment_id: int) -> str:
    close_old_connections()
    experiment = records.experiment_claim(experiment_id=experiment_id, host=self.request.hostname or "")
    if experiment is None:
        return "not queued"
    try:
        # The loop runs on this thread: the engine spawns its processes here.
        return asyncio.run(ExperimentRunner(experiment).run())
    finally:
        close_old_connections()


@shared_task(name="sandbox.janitor", ignore_result=True)
def janitor() -> list[int]:
    """Reap experiments whose worker was lost, and send again the queued ones whose message Redis lost."""
    reaped = records.experiments_reap(host=socket.gethostname())
    if reaped:
        log.warning("janitor: reaped lost experiments %s", reaped)
    resent = requeue.experiments_requeue_lost(send=run_experiment.delay)
    if resent:
        log.warning("janitor: re-sent queued experiments whose message was lost %s", resent)
    return reaped


@worker_ready.connect
def reap_at_worker_start(sender=None, **kwargs) -> None:
    """A worker that starts again after a crash reaps what its previous run left, at once; and after a restart
    of the whole site (Redis included) the experiments still queued get their lost messages back."""
    node = getattr(sender, "hostname", "") or ""
    try:
        reaped = records.experiments_reap_orphans(node=node) + records.experiments_reap(host=socket.gethostname())
        resent = requeue.experiments_requeue_lost(send=run_experiment.delay)
    finally:
        close_old_connections()
    if reaped:
        log.warning("worker %s started: reaped lost experiments %s", node, reaped)
    if resent:
        log.warning("worker %s started: re-sent queued experiments whose message was lost %s", node, resent)
