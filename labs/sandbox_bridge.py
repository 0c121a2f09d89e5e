"""The labs' one door into the live sandbox (the `sandbox` app): start the learner's experiment, send a button's
command, read the experiment's recent events. Labs never touch the sandbox's models or Redis streams except here.

The sandbox's modules are imported when used: it is another app, and a site without it must still show labs
(saying labs cannot run yet) rather than fail.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import redis
from django.contrib.auth.models import AbstractBaseUser

from sandbox.mesh.events import Event, event_from_json

UNREACHABLE = "The live mesh cannot be reached right now; the checks go on when it is back."
EVENTS_READ = 300  # newest stream entries read per check (snapshots once a second plus the events between)


class SandboxUnavailable(Exception):
    """The sandbox could not do what the lab asked; the message says what the learner can do."""


def _sandbox(module: str) -> ModuleType:
    """A module of the sandbox app; a site without the live sandbox says so instead of failing."""
    try:
        return importlib.import_module(f"sandbox.{module}")
    except ImportError as exc:
        raise SandboxUnavailable("The live sandbox is not available on this site, so labs cannot run yet.") from exc


def experiment_start(*, user: AbstractBaseUser, topology: str) -> Any:
    """The learner's experiment on `topology`: a new one, or the one already running on it. One already
    running on another topology is not stopped behind the learner's back: they are told."""
    services = _sandbox("services")
    try:
        experiment = services.experiment_start(user=user, topology=topology)
    except services.SandboxError as exc:
        raise SandboxUnavailable(str(exc)) from exc
    if experiment.topology != topology:
        raise SandboxUnavailable(
            f"You already have an experiment running on the {experiment.topology} mesh. Stop it in the sandbox, "
            f"then start this lab again."
        )
    return experiment


def experiment_get(*, user: AbstractBaseUser, experiment_id: int | None) -> Any | None:
    """The learner's own experiment, or None (never someone else's)."""
    if experiment_id is None:
        return None
    return _sandbox("models").Experiment.objects.filter(pk=experiment_id, owner=user).first()


def command_send(*, experiment: Any, command: dict) -> str:
    """Send one command; returns its id (the engine answers on the event stream)."""
    services = _sandbox("services")
    try:
        return str(services.command_send(experiment=experiment, command=command).pk)
    except services.SandboxError as exc:
        raise SandboxUnavailable(str(exc)) from exc


def command_applied_at(*, experiment: Any, command_id: str) -> float | None:
    """Experiment seconds when the engine applied the command; None while it waits (or if it was refused)."""
    commands = _sandbox("models").ExperimentCommand
    return (
        commands.objects.filter(experiment=experiment, pk=command_id, outcome=commands.Outcome.APPLIED)
        .values_list("t", flat=True)
        .first()
    )


def command_refusal(*, experiment: Any, command_id: str) -> str:
    """Why the engine refused the command, or "" if it did not."""
    commands = _sandbox("models").ExperimentCommand
    return (
        commands.objects.filter(experiment=experiment, pk=command_id, outcome=commands.Outcome.REFUSED)
        .values_list("answer", flat=True)
        .first()
        or ""
    )


def recent_events(*, experiment: Any) -> list[Event]:
    """The experiment's newest events, oldest first, as the engine's typed events."""
    streams = _sandbox("streams")
    try:
        entries = streams.client().xrevrange(streams.events_key(experiment.pk), count=EVENTS_READ)
    except redis.RedisError as exc:
        raise SandboxUnavailable(UNREACHABLE) from exc
    events = []
    for _, fields in reversed(entries):
        try:
            events.append(event_from_json(streams.event_json(fields)))
        except ValueError:
            continue  # not an engine event: nothing a check can use
    return events


def viewer_present(*, experiment: Any) -> None:
    """A lab page is watching: the experiment is not idle."""
    try:
        _sandbox("services").viewer_present(experiment=experiment)
    except redis.RedisError as exc:
        raise SandboxUnavailable(UNREACHABLE) from exc


def experiment_is_live(experiment: Any) -> bool:
    return bool(experiment is not None and experiment.is_active)
