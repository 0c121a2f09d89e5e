"""The learner's writes in the sandbox: starting, steering and stopping experiments.

The worker's own record of a run (claim, heartbeat, events, finish, reaping) is `records.py`."""

import functools
import logging
from datetime import timedelta

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from . import requeue, selectors, streams
from .models import Experiment, ExperimentCommand
from .tasks import run_experiment

log = logging.getLogger(__name__)


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


# --------------------------------------------------------------------------- the learner's actions


def experiment_start(*, user: AbstractBaseUser, topology: str) -> Experiment:
    """Start (queue) an experiment, or return the learner's active one: a double click or a second tab
    gives one experiment. The task is enqueued once the row is committed."""
    if topology not in selectors.TOPOLOGY_NAMES:
        raise UnknownTopology(f"topology: choose one of {', '.join(selectors.TOPOLOGY_NAMES)}, got {topology!r}.")

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
        parsed = parse_command(command, selectors.topology_get(experiment.topology))
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
