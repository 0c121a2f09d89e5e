"""Queued experiments whose Celery message was lost get a new one.

The database is the record and Redis only carries messages: when Redis goes (bin/run stopped, Redis restarted
with `--save ""`) every queued experiment's message goes with it, while the record stays "queued" until the
janitor fails it an hour later, and the learner waits for nothing. So at every sandbox worker start and on
every janitor round, each queued experiment without a live message is sent again.

How "without a live message" is told: when a message is sent, a marker key `sandbox:<id>:enqueued` is written
beside it in the same Redis. Redis loses both together, so a missing marker means a lost message; a marker
that is there means the message still waits in the broker (or a worker holds it). Why not simply re-send every
queued experiment each round, since the task is idempotent (a second message finds the experiment no longer
queued and does nothing)? Because that "nothing" is not free: every duplicate takes a pool process of the
sandbox worker, which runs one task per child (a fresh fork and Django start each), and a queue of ten
learners waiting an hour would leave over a thousand of them behind. Duplicates can still happen (two
processes checking at once before the marker is written): harmless, for the same idempotence.

Why not read the broker's list instead: its layout is kombu's private business (priority sub-queues, the
unacked hash of reserved messages); the marker is ours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import redis
from django.conf import settings
from django.utils import timezone
from kombu.exceptions import OperationalError

from . import streams
from .models import Experiment

log = logging.getLogger(__name__)

# A queued experiment younger than this is left alone: its first message may still be on its way (the
# marker is written just after the send), and re-sending it would only make a duplicate.
GRACE_SECONDS = 15


def enqueued_key(experiment_id: int) -> str:
    return f"sandbox:{experiment_id}:enqueued"


def enqueued_mark(connection: redis.Redis, *, experiment_id: int, only_new: bool = False) -> bool:
    """Note that a message for the experiment is in the broker; with only_new, only if none was noted (so of
    two processes re-sending at once one does). It expires when a queued experiment is failed anyway."""
    return bool(connection.set(enqueued_key(experiment_id), "1", ex=settings.SANDBOX_QUEUE_TIMEOUT, nx=only_new))


def experiments_requeue_lost(*, send: Callable[[int], object]) -> list[int]:
    """Send again every experiment queued longer than the grace whose message is gone; returns their ids.
    Redis not answering re-sends nothing: the next round tries again. `send` is the task's `delay` (the
    janitor passes it: this module is below the tasks and does not import them)."""
    cutoff = timezone.now() - timedelta(seconds=GRACE_SECONDS)
    waiting = list(
        Experiment.objects.filter(status=Experiment.Status.QUEUED, created_at__lt=cutoff)
        .order_by("created_at")  # oldest first: the broker's queue keeps their order
        .values_list("pk", flat=True)
    )
    if not waiting:
        return []
    sent = []
    try:
        connection = streams.client()
        for experiment_id in waiting:
            if not enqueued_mark(connection, experiment_id=experiment_id, only_new=True):
                continue  # its message is still in the broker
            try:
                send(experiment_id)
            except (OperationalError, redis.RedisError):
                connection.delete(enqueued_key(experiment_id))  # not sent after all: the next round tries again
                raise
            sent.append(experiment_id)
    except (OperationalError, redis.RedisError):
        log.warning("queued experiments could not be re-sent: the broker did not answer", exc_info=True)
    return sent
