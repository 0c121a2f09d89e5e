"""Reads for the sandbox pages: a learner's experiments, their place in the queue, and what the page shows."""

import functools
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404
from django.utils import timezone

from sandbox.mesh.runtime.events import Event, event_from_json

from . import streams
from .models import TOPOLOGIES, Experiment, ExperimentCommand, ExperimentEvent
from .queue_estimate import queue_wait
from .state import HISTORY_SHOWN, ViewState, state_from_record, state_from_stream

STREAM_ENTRIES_READ = HISTORY_SHOWN + 30  # enough snapshots for the sparklines, plus the events between them
TOPOLOGY_NAMES = tuple(name for name, _ in TOPOLOGIES)


@functools.cache
def topology_get(name: str):
    """The shipped topology by name (the engine's typed object), parsed once per process."""
    from sandbox.mesh.config.topology import load_topology, shipped_topology_path

    return load_topology(shipped_topology_path(name))


def experiment_get(*, experiment_id: int, user: AbstractBaseUser) -> Experiment:
    """The learner's own experiment; anyone else's is a 404, indistinguishable from one that does not exist."""
    if not user.is_authenticated:
        raise Http404("No such experiment.")
    experiment = Experiment.objects.filter(pk=experiment_id, owner=user).first()
    if experiment is None:
        raise Http404("No such experiment.")
    return experiment


def experiment_owned(*, experiment_id: int | None, user: AbstractBaseUser) -> Experiment | None:
    """The learner's own experiment, or None (never someone else's): for callers that hold an id of their own."""
    if experiment_id is None or not user.is_authenticated:
        return None
    return Experiment.objects.filter(pk=experiment_id, owner=user).first()


def command_answered(*, experiment: Experiment, command_id: str) -> ExperimentCommand | None:
    """The learner's command once the engine answered it (applied or refused); None while it waits."""
    return (
        ExperimentCommand.objects.filter(experiment=experiment, pk=_uuid_or_none(command_id))
        .exclude(outcome=ExperimentCommand.Outcome.SENT)
        .first()
    )


def _duration_words(seconds: int) -> str:
    if seconds % 60 == 0 and seconds >= 60:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def experiment_end_words(*, experiment: Experiment) -> str:
    """How an ended experiment ended, in a sentence a learner understands (the record keeps a short reason)."""
    reason = experiment.end_reason
    if experiment.status == Experiment.Status.FAILED:
        known = {
            "worker lost": "the machine running it stopped answering, so it was switched off",
            "no worker took it in time": "no place freed up for it in time",
        }
        return known.get(reason, reason or "it failed without saying why")
    known = {
        "idle": (
            f"no page had it open for {_duration_words(settings.SANDBOX_IDLE_TIMEOUT)}, so it was switched off "
            f"to free its place for others"
        ),
        "deadline": f"it ran for {_duration_words(settings.SANDBOX_LIFETIME)}, the longest an experiment may run",
        "stopped": "you stopped it",
        "stopped before it started": "it was stopped before it started",
        "stopped: the site shut down": "the site was restarted while it ran",
        "completed": "it ran to its end",
    }
    return known.get(reason, f"it ended ({reason})" if reason else "it ended")


def experiment_list(*, user: AbstractBaseUser) -> dict:
    experiments = list(Experiment.objects.filter(owner=user)[:30])
    active = next((experiment for experiment in experiments if experiment.is_active), None)
    return {"active": active, "past": [experiment for experiment in experiments if not experiment.is_active]}


RECENT_DURATIONS = 50  # ended experiments the queue estimate learns from


@dataclass
class QueuePlace:
    place: int  # 1 = next to start
    ahead: int
    estimate_seconds: int | None  # from how long experiments really ran here; None before any has ended
    bound_seconds: int  # at the latest: every running one and every one ahead to its full lifetime

    @property
    def starts_now(self) -> bool:
        return self.bound_seconds == 0

    @property
    def estimate_minutes(self) -> int:
        """Rounded to the nearest minute, at least one: an estimate, not a countdown."""
        return max(1, round((self.estimate_seconds or 0) / 60))

    @property
    def bound_minutes(self) -> int:
        return max(1, -(-self.bound_seconds // 60))


def queue_place(*, experiment: Experiment) -> QueuePlace | None:
    """Where a queued experiment stands, and about when a slot frees for it (see queue_estimate)."""
    if experiment.status != Experiment.Status.QUEUED:
        return None
    ahead = Experiment.objects.filter(status=Experiment.Status.QUEUED, created_at__lt=experiment.created_at).count()
    now = timezone.now()
    running_elapsed = [
        (now - (started_at or now)).total_seconds()
        for started_at in Experiment.objects.filter(status__in=Experiment.OWNED).values_list("started_at", flat=True)
    ]
    ended = (
        Experiment.objects.filter(started_at__isnull=False, ended_at__isnull=False)
        .exclude(status__in=Experiment.ACTIVE)
        .order_by("-ended_at")
        .values_list("started_at", "ended_at")[:RECENT_DURATIONS]
    )
    wait = queue_wait(
        ahead=ahead,
        capacity=settings.SANDBOX_TOTAL_CAPACITY,
        running_elapsed=running_elapsed,
        recent_durations=[(ended_at - started_at).total_seconds() for started_at, ended_at in ended],
        lifetime=settings.SANDBOX_LIFETIME,
    )
    return QueuePlace(
        place=ahead + 1, ahead=ahead, estimate_seconds=wait.estimate_seconds, bound_seconds=wait.bound_seconds
    )


def experiment_commands(*, experiment: Experiment) -> list[ExperimentCommand]:
    return list(experiment.commands.all())


def experiment_notable(*, experiment: Experiment) -> list[dict]:
    return [
        {"kind": event.kind, **event.data, "t": event.t}
        for event in ExperimentEvent.objects.filter(experiment=experiment).order_by("-id")[:60]
    ][::-1]


def experiment_state(*, experiment: Experiment) -> ViewState:
    """What the page shows now: from the live stream while it runs, from the record once it ended."""
    notable = experiment_notable(experiment=experiment)
    if experiment.is_active:
        entries = streams.client().xrevrange(streams.events_key(experiment.pk), count=STREAM_ENTRIES_READ)
        return state_from_stream(entries[::-1], notable=notable)
    return state_from_record(experiment.result or {}, notable=notable)


def experiment_recent_events(*, experiment: Experiment, count: int) -> list[Event]:
    """The experiment's newest `count` stream entries as the engine's typed events, oldest first; entries that
    are not engine events are left out. Raises redis.RedisError when Redis does not answer."""
    entries = streams.client().xrevrange(streams.events_key(experiment.pk), count=count)
    events = []
    for _, fields in reversed(entries):
        try:
            events.append(event_from_json(streams.event_json(fields)))
        except ValueError:
            continue  # not an engine event: nothing a reader can use
    return events


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError):
        return None
