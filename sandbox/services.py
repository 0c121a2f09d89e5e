"""Writes for the sandbox: starting, steering and stopping experiments, and the worker's record of them."""

import functools
import logging
import socket
from datetime import timedelta

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import processes, requeue, streams
from .models import TOPOLOGIES, Experiment, ExperimentCommand, ExperimentEvent

log = logging.getLogger(__name__)

TOPOLOGY_NAMES = tuple(name for name, _ in TOPOLOGIES)
WORKER_LOST = "worker lost"


class SandboxError(Exception):
    """A request the learner can fix or wait out; the message says which, in plain words."""


class UnknownTopology(SandboxError):
    pass


class TooManyStarts(SandboxError):
    pass


class CommandInvalid(SandboxError):
    pass


class ExperimentOver(SandboxError):
    pass


class SandboxUnavailable(SandboxError):
    """Redis, which carries commands to the worker, did not answer: nothing was sent or changed."""


@functools.cache
def topology_get(name: str):
    """The shipped topology by name (the engine's typed object), parsed once per process."""
    from sandbox.mesh.config.topology import load_topology, shipped_topology_path

    return load_topology(shipped_topology_path(name))


# --------------------------------------------------------------------------- the learner's actions


def experiment_start(*, user: AbstractBaseUser, topology: str) -> Experiment:
    """Start (queue) an experiment, or return the learner's active one: a double click or a second tab
    gives one experiment. The task is enqueued once the row is committed."""
    if topology not in TOPOLOGY_NAMES:
        raise UnknownTopology(f"topology: choose one of {', '.join(TOPOLOGY_NAMES)}, got {topology!r}.")

    try:
        with transaction.atomic():
            # Lock the learner's row so two concurrent starts queue behind each other (PostgreSQL); the unique
            # constraint catches what the lock cannot (SQLite serialises writers anyway).
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            active = Experiment.objects.filter(owner=user, status__in=Experiment.ACTIVE).first()
            if active is not None:
                return active
            window_start = timezone.now() - timedelta(seconds=settings.SANDBOX_START_WINDOW)
            recent = Experiment.objects.filter(owner=user, created_at__gte=window_start).count()
            if recent >= settings.SANDBOX_STARTS_PER_WINDOW:
                minutes = max(1, settings.SANDBOX_START_WINDOW // 60)
                raise TooManyStarts(
                    f"You started {recent} experiments in the last {minutes} minutes, the most allowed. "
                    f"Wait a few minutes, then start again."
                )
            experiment = Experiment.objects.create(owner=user, topology=topology, runtime=settings.SANDBOX_RUNTIME)
            transaction.on_commit(functools.partial(_experiment_enqueue, experiment_id=experiment.pk))
            return experiment
    except IntegrityError:
        # Another request of the same learner created it between our check and our insert.
        return Experiment.objects.get(owner=user, status__in=Experiment.ACTIVE)


def _experiment_enqueue(*, experiment_id: int) -> None:
    """Hand the committed experiment to the workers. A broker that does not answer fails it at once, with
    words that say what to do: left queued, it would wait an hour for a message that was never sent, and
    hold the learner's one experiment."""
    from kombu.exceptions import OperationalError

    from .tasks import run_experiment

    try:
        run_experiment.delay(experiment_id)
    except (OperationalError, redis.RedisError):
        log.warning("experiment %s could not be queued: the broker did not answer", experiment_id, exc_info=True)
        Experiment.objects.filter(pk=experiment_id, status=Experiment.Status.QUEUED).update(
            status=Experiment.Status.FAILED,
            ended_at=timezone.now(),
            end_reason="the sandbox was not answering when you started it; start again in a minute",
        )
        return
    try:
        requeue.enqueued_mark(streams.client(), experiment_id=experiment_id)
    except redis.RedisError:
        pass  # no marker: the janitor sends the message once more, which is harmless (see requeue.py)


def command_send(*, experiment: Experiment, command: dict) -> ExperimentCommand:
    """Validate a command with the engine's own validator and put it on the experiment's command stream.
    The engine applies it in order and answers (applied, or refused with its reason) through the events."""
    if not experiment.is_active or experiment.status == Experiment.Status.STOPPING:
        raise ExperimentOver("This experiment has ended; start a new one to try that.")
    from sandbox.mesh.runtime.commands import CommandError, command_to_json, describe, parse_command

    try:
        parsed = parse_command(command, topology_get(experiment.topology))
    except CommandError as exc:
        raise CommandInvalid(str(exc)) from exc
    record = ExperimentCommand.objects.create(
        experiment=experiment, command=command_to_json(parsed), description=describe(parsed)[:300]
    )
    try:
        streams.command_push(
            streams.client(), experiment_id=experiment.pk, command=record.command, command_id=str(record.pk)
        )
    except redis.RedisError as exc:
        # A command the worker never got must not sit in the learner's list as "sent, waiting for the mesh".
        record.delete()
        raise SandboxUnavailable(
            "The sandbox is not answering right now, so nothing was sent. Try again in a few seconds."
        ) from exc
    return record


def experiment_stop(*, experiment: Experiment) -> Experiment:
    """Ask the experiment to stop: a command on its stream that the worker obeys at once (never a revoke,
    which would kill the worker's process and leave the mesh to the janitor). A queued one just ends."""
    ended = Experiment.objects.filter(pk=experiment.pk, status=Experiment.Status.QUEUED).update(
        status=Experiment.Status.FINISHED, end_reason="stopped before it started", ended_at=timezone.now()
    )
    if not ended:
        experiment.refresh_from_db()
        # Only a worker that still runs it reads the stream; a stop for an ended experiment would only leave a key.
        if experiment.status in Experiment.OWNED:
            # Tell the worker first: when Redis does not answer nothing has changed, and stopping again works.
            try:
                streams.command_push(
                    streams.client(), experiment_id=experiment.pk, command={"action": streams.STOP}, command_id="stop"
                )
            except redis.RedisError as exc:
                raise SandboxUnavailable(
                    "The sandbox is not answering right now, so the experiment was not stopped. "
                    "Try again in a few seconds."
                ) from exc
            Experiment.objects.filter(
                pk=experiment.pk, status__in=(Experiment.Status.STARTING, Experiment.Status.RUNNING)
            ).update(status=Experiment.Status.STOPPING)
    experiment.refresh_from_db()
    return experiment


def viewer_present(*, experiment: Experiment) -> None:
    """A page watches the experiment: it is not idle."""
    streams.viewer_touch(streams.client(), experiment_id=experiment.pk)


# --------------------------------------------------------------------------- the worker's record


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
    import uuid

    try:
        return uuid.UUID(value)
    except ValueError:
        return None
