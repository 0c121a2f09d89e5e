"""The labs' one door into the live sandbox (the `sandbox` app): start the learner's experiment, send a button's
command, read the experiment's recent events. Labs never touch the sandbox's models or Redis streams: what they
read comes from `sandbox.selectors` (here, and the shipped topologies in `content_files`), what they write from
`sandbox.services`.

The sandbox's selectors and services are imported for real and typed: an attribute the sandbox does not have is
an error a linter or the first test sees, not a 500 on a learner's page. A site that leaves the sandbox app out
of INSTALLED_APPS still shows labs, saying they cannot run yet; so does one whose Redis does not answer.
"""

from __future__ import annotations

import redis
from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser

from sandbox import selectors as sandbox_selectors
from sandbox import services as sandbox_services
from sandbox.mesh.runtime.events import Event
from sandbox.models import Experiment, ExperimentCommand

UNREACHABLE = "The live mesh cannot be reached right now; the checks go on when it is back."
NOT_HERE = "The live sandbox is not available on this site, so labs cannot run yet."
EVENTS_READ = 300  # newest stream entries read per check (snapshots once a second plus the events between)


class SandboxUnavailable(Exception):
    """The sandbox could not do what the lab asked; the message says what the learner can do."""


def _require_sandbox() -> None:
    """A site without the sandbox app says so instead of reading tables that are not there."""
    if not apps.is_installed("sandbox"):
        raise SandboxUnavailable(NOT_HERE)


def experiment_start(*, user: AbstractBaseUser, topology: str) -> Experiment:
    """The learner's experiment on `topology`: a new one, or the one already running on it. One already
    running on another topology is not stopped behind the learner's back: they are told."""
    _require_sandbox()
    try:
        experiment = sandbox_services.experiment_start(user=user, topology=topology)
    except sandbox_services.SandboxError as exc:
        raise SandboxUnavailable(str(exc)) from exc
    if experiment.topology != topology:
        raise SandboxUnavailable(
            f"You already have an experiment running on the {experiment.topology} mesh. Stop it in the sandbox, "
            f"then start this lab again."
        )
    return experiment


def experiment_get(*, user: AbstractBaseUser, experiment_id: int | None) -> Experiment | None:
    """The learner's own experiment, or None (never someone else's)."""
    if experiment_id is None:
        return None
    _require_sandbox()
    return sandbox_selectors.experiment_owned(experiment_id=experiment_id, user=user)


def command_send(*, experiment: Experiment, command: dict) -> str:
    """Send one command; returns its id (the engine answers on the event stream)."""
    try:
        return str(sandbox_services.command_send(experiment=experiment, command=command).pk)
    except sandbox_services.SandboxError as exc:
        raise SandboxUnavailable(str(exc)) from exc


def command_applied_at(*, experiment: Experiment, command_id: str) -> float | None:
    """Experiment seconds when the engine applied the command; None while it waits (or if it was refused)."""
    answered = sandbox_selectors.command_answered(experiment=experiment, command_id=command_id)
    return answered.t if answered is not None and answered.outcome == ExperimentCommand.Outcome.APPLIED else None


def command_refusal(*, experiment: Experiment, command_id: str) -> str:
    """Why the engine refused the command, or "" if it did not."""
    answered = sandbox_selectors.command_answered(experiment=experiment, command_id=command_id)
    if answered is None or answered.outcome != ExperimentCommand.Outcome.REFUSED:
        return ""
    return answered.answer


def recent_events(*, experiment: Experiment) -> list[Event]:
    """The experiment's newest events, oldest first, as the engine's typed events."""
    try:
        return sandbox_selectors.experiment_recent_events(experiment=experiment, count=EVENTS_READ)
    except redis.RedisError as exc:
        raise SandboxUnavailable(UNREACHABLE) from exc


def viewer_present(*, experiment: Experiment) -> None:
    """A lab page is watching: the experiment is not idle."""
    try:
        sandbox_services.viewer_present(experiment=experiment)
    except redis.RedisError as exc:
        raise SandboxUnavailable(UNREACHABLE) from exc


def experiment_is_live(experiment: Experiment | None) -> bool:
    return bool(experiment is not None and experiment.is_active)


def experiment_is_stopping(experiment: Experiment) -> bool:
    return experiment.status == Experiment.Status.STOPPING


def experiment_end_words(experiment: Experiment) -> str:
    """How the experiment ended, in the sandbox's plain words ("you stopped it", "no page had it open ...")."""
    return sandbox_selectors.experiment_end_words(experiment=experiment)
