"""The worker's record of an experiment it runs: claim, running, heartbeat, events, finish, and the janitor's
reaping of experiments whose worker was lost. Apart from the learner's writes (`services.py`): the Celery
task and the runner call these, and they enqueue nothing."""

import logging
import socket
import uuid
from datetime import timedelta

import redis
from django.conf import settings
from django.utils import timezone

from . import processes, streams
from .models import Experiment, ExperimentCommand, ExperimentEvent

log = logging.getLogger(__name__)

WORKER_LOST = "worker lost"


def experiment_claim(*, experiment_id: int, host: str) -> Experiment | None:
    """The worker takes a queued experiment; None when it is not queued any more (stopped while it waited,
    reaped, or a redelivered message): then the worker must not run it."""
    now = timezone.now()
    claimed = Experiment.objects.filter(pk=experiment_id, status=Experiment.Status.QUEUED).update(
        status=Experiment.Status.STARTING, worker_host=host, heartbeat_at=now, started_at=now
    )
    return Experiment.objects.get(pk=experiment_id) if claimed else None


def experiment_mark_running(*, experiment_id: int, pgid: int | None) -> None:
    Experiment.objects.filter(pk=experiment_id).update(pgid=pgid, heartbeat_at=timezone.now())
    # Only a starting experiment becomes running: a stop asked while it started wins.
    Experiment.objects.filter(pk=experiment_id, status=Experiment.Status.STARTING).update(
        status=Experiment.Status.RUNNING
    )


def experiment_heartbeat(*, experiment_id: int) -> bool:
    """Renew the heartbeat; False when the experiment is not ours any more (the janitor reaped it)."""
    return bool(
        Experiment.objects.filter(pk=experiment_id, status__in=Experiment.OWNED).update(heartbeat_at=timezone.now())
    )


def experiment_event_record(*, experiment_id: int, kind: str, t: float, data: dict) -> None:
    """Keep a notable event; an answer to a learner's command also updates that command's outcome."""
    ExperimentEvent.objects.create(experiment_id=experiment_id, kind=kind, t=t, data=data)
    if kind in ("applied", "refused") and data.get("id"):
        answer = data.get("said", "") if kind == "applied" else data.get("reason", "")
        ExperimentCommand.objects.filter(experiment_id=experiment_id, pk=_uuid_or_none(data["id"])).update(
            outcome=kind, answer=answer, t=t
        )


def experiment_finish(*, experiment_id: int, reason: str, result: dict) -> None:
    """Record the end. A reason "failed: <why>" fails the experiment; anything else finished it."""
    failed = reason.startswith("failed")
    Experiment.objects.filter(pk=experiment_id, status__in=Experiment.OWNED).update(
        status=Experiment.Status.FAILED if failed else Experiment.Status.FINISHED,
        end_reason=reason.removeprefix("failed:").strip() if failed else reason,
        ended_at=timezone.now(),
        result=result,
    )
    _streams_expire(experiment_id=experiment_id)


def _streams_expire(*, experiment_id: int) -> None:
    """After the end: unanswered commands never will be, and the streams go after a while."""
    ExperimentCommand.objects.filter(experiment_id=experiment_id, outcome=ExperimentCommand.Outcome.SENT).update(
        outcome=ExperimentCommand.Outcome.REFUSED, answer="The experiment ended before this command was applied."
    )
    # The record above is what counts; Redis may already be gone (the site shutting down). Then the streams
    # simply outlive their TTL: they are capped, and nothing reads them once the record says the end.
    try:
        connection = streams.client()
        for key in (streams.commands_key(experiment_id), streams.events_key(experiment_id)):
            connection.expire(key, settings.SANDBOX_STREAM_TTL)
    except redis.RedisError:
        log.warning("experiment %s ended but Redis did not answer; its streams expire only by their cap", experiment_id)


def experiments_reap(*, host: str | None = None) -> list[int]:
    """The janitor: experiments whose heartbeat stopped are marked "failed: worker lost", and their mesh's
    process group is killed when it runs on this host. Queued experiments that never started fail too.
    Returns the ids it reaped."""
    host = host or socket.gethostname()
    now = timezone.now()
    reaped = []
    lost = Experiment.objects.filter(
        status__in=Experiment.OWNED, heartbeat_at__lt=now - timedelta(seconds=settings.SANDBOX_HEARTBEAT_TIMEOUT)
    )
    for experiment in lost:
        changed = Experiment.objects.filter(
            pk=experiment.pk, status__in=Experiment.OWNED, heartbeat_at=experiment.heartbeat_at
        ).update(status=Experiment.Status.FAILED, end_reason=WORKER_LOST, ended_at=now)
        if not changed:
            continue  # its worker renewed the heartbeat meanwhile
        if experiment.pgid and _same_host(experiment.worker_host, host):
            processes.process_group_kill(experiment.pgid)
        _streams_expire(experiment_id=experiment.pk)
        reaped.append(experiment.pk)
    stale = Experiment.objects.filter(
        status=Experiment.Status.QUEUED, created_at__lt=now - timedelta(seconds=settings.SANDBOX_QUEUE_TIMEOUT)
    )
    for experiment in stale:
        if Experiment.objects.filter(pk=experiment.pk, status=Experiment.Status.QUEUED).update(
            status=Experiment.Status.FAILED, end_reason="no worker took it in time", ended_at=now
        ):
            reaped.append(experiment.pk)
    return reaped


def experiments_reap_orphans(*, node: str) -> list[int]:
    """At worker start: experiments this worker node owned were lost with its previous run, whatever their
    heartbeat says (a restart may come back within the heartbeat timeout). Node names are unique among
    running workers, so another worker's experiments on the same machine are left alone."""
    reaped = []
    now = timezone.now()
    for experiment in Experiment.objects.filter(status__in=Experiment.OWNED, worker_host=node):
        if Experiment.objects.filter(
            pk=experiment.pk, status__in=Experiment.OWNED, heartbeat_at=experiment.heartbeat_at
        ).update(status=Experiment.Status.FAILED, end_reason=WORKER_LOST, ended_at=now):
            if experiment.pgid:
                processes.process_group_kill(experiment.pgid)
            _streams_expire(experiment_id=experiment.pk)
            reaped.append(experiment.pk)
    return reaped


def _same_host(worker_host: str, host: str) -> bool:
    """worker_host is the Celery node name ("sandbox1@machine"); a host is the machine's name."""
    return worker_host == host or worker_host.rpartition("@")[2] == host


def _uuid_or_none(value: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
