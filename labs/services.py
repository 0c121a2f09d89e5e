"""Writes for labs: loading lab files, grading a learner's prediction, starting a lab, latching its checks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from lessons.models import Lesson
from lessons.rendering import render_markdown
from meshlearn.content import ContentError, LoadReport, content_upsert
from quizzes.models import Option, Question, new_seed
from quizzes.services import InvalidAnswer, questions_upsert
from quizzes.shuffle import shuffled_order
from sandbox.mesh.runtime.events import Event

from . import sandbox_bridge
from .checks import CheckResult, Progress, check_from_json, check_triggers, progress_update
from .content_files import LabSpec, parse_lab_directory
from .models import Lab, LabProgress

# --------------------------------------------------------------------------- authoring


def lab_save(*, lab: Lab) -> Lab:
    """Save with a freshly rendered explanation: the only way lab HTML is produced."""
    lab.explanation_html = render_markdown(lab.explanation)
    lab.save()
    return lab


def labs_parse_all(*, lesson_slugs: set[str]) -> list[LabSpec]:
    return parse_lab_directory(settings.COURSE_CONTENT_DIRS["labs"], lesson_slugs=lesson_slugs)


def labs_write(*, specs: list[LabSpec]) -> LoadReport:
    """Create or update labs (and their prediction questions) by slug, in one transaction."""
    with transaction.atomic():
        # A lab's prediction is keyed lab-<slug>; a practice question already using that key is not overwritten.
        clash = Question.objects.filter(key__in=[spec.prediction.key for spec in specs], lab__isnull=True).first()
        if clash is not None:
            raise ContentError("labs/content", f"prediction key {clash.key!r} is already a practice question's key")
        questions_upsert(questions=[spec.prediction for spec in specs], source="labs/content")
        predictions = {q.key: q for q in Question.objects.filter(key__in=[spec.prediction.key for spec in specs])}
        # Predictions are asked on the lab page, before acting; out of context they make poor practice.
        Question.objects.filter(pk__in=[q.pk for q in predictions.values()]).update(published=False)
        lessons = {lesson.slug: lesson for lesson in Lesson.objects.all()}

        def write(lab: Lab, spec: LabSpec) -> None:
            lab.lesson = lessons[spec.lesson]
            lab.prediction = predictions[spec.prediction.key]
            lab_save(lab=lab)

        return content_upsert(
            model=Lab,
            specs=specs,
            key="slug",
            fields=(
                "title",
                "order",
                "topology",
                "goal",
                "start_commands",
                "steps",
                "checks",
                "explanation",
                "source_path",
            ),
            write=write,
        )


# --------------------------------------------------------------------------- learning


def lab_progress_get_or_create(*, user: AbstractBaseUser, lab: Lab) -> LabProgress:
    progress, _ = LabProgress.objects.get_or_create(user=user, lab=lab, defaults={"shuffle_seed": new_seed()})
    return progress


@dataclass(frozen=True)
class PredictionResult:
    progress: LabProgress
    created: bool  # False when a prediction had already been recorded (double click, second tab)


def prediction_submit(*, user: AbstractBaseUser, lab: Lab, option_public_id: str) -> PredictionResult:
    """Grade the learner's prediction on the server; the first answer is the one kept."""
    try:
        public_id = uuid.UUID(option_public_id)
    except (TypeError, ValueError, AttributeError):
        raise InvalidAnswer("Pick one of the options before checking your prediction.") from None
    progress = lab_progress_get_or_create(user=user, lab=lab)
    if progress.predicted:
        return PredictionResult(progress, created=False)
    options = list(Option.objects.filter(question=lab.prediction))
    option = next((candidate for candidate in options if candidate.public_id == public_id), None)
    if option is None:
        raise InvalidAnswer("That answer is not one of this prediction's options. Reload the page and pick one.")
    shown = shuffled_order(
        [candidate.id for candidate in options], seed=progress.shuffle_seed, question_id=lab.prediction_id
    )
    # One conditional UPDATE: of two answers racing (a double click, a second tab) only the first is kept.
    updated = LabProgress.objects.filter(pk=progress.pk, predicted_at__isnull=True).update(
        option=option, prediction_correct=option.is_correct, shown_order=shown, predicted_at=timezone.now()
    )
    progress.refresh_from_db()
    return PredictionResult(progress, created=bool(updated))


class LabError(Exception):
    """Something the learner can fix (answer the prediction first, start the lab); the message says how."""


HEAL_EVERYTHING = {"action": "heal"}  # a lab starts from the mesh as its topology declares it


def lab_start(*, user: AbstractBaseUser, lab: Lab) -> LabProgress:
    """Start the lab on the learner's experiment (a new one, or the one running on the lab's topology):
    everything healed, then the lab's starting policy; the checks start counting once that is applied."""
    progress = lab_progress_get_or_create(user=user, lab=lab)
    if not progress.predicted:
        raise LabError("Answer the prediction first: it is what you will compare with what the mesh does.")
    try:
        experiment = sandbox_bridge.experiment_start(user=user, topology=lab.topology)
        ids = [
            sandbox_bridge.command_send(experiment=experiment, command=command)
            for command in [HEAL_EVERYTHING, *lab.start_commands]
        ]
    except sandbox_bridge.SandboxUnavailable as exc:
        raise LabError(str(exc)) from exc
    progress.experiment_id = experiment.pk
    progress.start_command_id = ids[-1]
    progress.started_t = None
    progress.checks_state = {}
    progress.save(update_fields=["experiment_id", "start_command_id", "started_t", "checks_state", "updated_at"])
    return progress


def lab_action_send(*, progress: LabProgress, step: int, action: int) -> str:
    """Press one of the lab's buttons: its command goes to the learner's running experiment.
    The browser names the button by position; the command itself never comes from the browser."""
    try:
        button = progress.lab.steps[step]["actions"][action]
    except (IndexError, KeyError, TypeError):
        raise LabError("That button is not part of this lab. Reload the page.") from None
    try:
        experiment = sandbox_bridge.experiment_get(user=progress.user, experiment_id=progress.experiment_id)
        if not sandbox_bridge.experiment_is_live(experiment):
            raise LabError("The lab's mesh is not running. Start the lab, then press the button again.")
        sandbox_bridge.command_send(experiment=experiment, command=button["command"])
    except sandbox_bridge.SandboxUnavailable as exc:
        raise LabError(str(exc)) from exc
    return button["label"]


@dataclass(frozen=True)
class CheckState:
    name: str
    says: str
    status: str  # passed | current | later
    observed: dict  # passed: what was measured when it latched
    reasons: list[str]  # current: why it does not pass yet, in numbers


@dataclass(frozen=True)
class LabStatus:
    phase: str  # not_started | starting | running | stopping | ended | refused | unavailable
    message: str
    checks: list[CheckState]
    experiment: object = None

    @property
    def complete(self) -> bool:
        return bool(self.checks) and all(check.status == "passed" for check in self.checks)


def _states(progress: LabProgress, current: CheckResult | None) -> list[CheckState]:
    passed = Progress.from_json(progress.checks_state).passed
    states, seen_current = [], False
    for data in progress.lab.checks:
        if data["name"] in passed:
            states.append(CheckState(data["name"], data["says"], "passed", passed[data["name"]]["observed"], []))
        elif not seen_current:
            seen_current = True
            reasons = current.why_not if current is not None else ["waiting for the mesh's first numbers"]
            states.append(CheckState(data["name"], data["says"], "current", {}, reasons))
        else:
            states.append(CheckState(data["name"], data["says"], "later", {}, []))
    return states


def lab_status_refresh(*, progress: LabProgress) -> LabStatus:
    """Where the learner's lab stands now: latch every check the live mesh passes, and say why the next one
    does not pass yet. Called by the lab page's live check panel."""
    try:
        return _status_refresh(progress)
    except sandbox_bridge.SandboxUnavailable as exc:
        return LabStatus("unavailable", str(exc), _states(progress, None))


def _status_refresh(progress: LabProgress) -> LabStatus:
    experiment = sandbox_bridge.experiment_get(user=progress.user, experiment_id=progress.experiment_id)
    if experiment is None:
        return LabStatus("not_started", "", _states(progress, None))
    if not sandbox_bridge.experiment_is_live(experiment):
        why = sandbox_bridge.experiment_end_words(experiment)
        return LabStatus(
            "ended",
            f"Your mesh for this lab has stopped: {why}. Start again to run the lab on a fresh mesh.",
            _states(progress, None),
            experiment,
        )
    if sandbox_bridge.experiment_is_stopping(experiment):
        # Its buttons would be refused now; say what happens next instead of asking for a press.
        return LabStatus(
            "stopping",
            "Your mesh for this lab is stopping. Once it has stopped you can start the lab again.",
            _states(progress, None),
            experiment,
        )
    sandbox_bridge.viewer_present(experiment=experiment)
    if progress.started_t is None:
        applied = sandbox_bridge.command_applied_at(experiment=experiment, command_id=progress.start_command_id)
        if applied is None:
            refusal = sandbox_bridge.command_refusal(experiment=experiment, command_id=progress.start_command_id)
            if refusal:
                return LabStatus(
                    "refused",
                    f"The mesh refused the lab's starting policy: {refusal}",
                    _states(progress, None),
                    experiment,
                )
            return LabStatus(
                "starting",
                "The mesh is starting and taking the lab's starting policy.",
                _states(progress, None),
                experiment,
            )
        progress.started_t = applied
        progress.save(update_fields=["started_t", "updated_at"])
    progress, current = lab_checks_update(progress=progress, events=sandbox_bridge.recent_events(experiment=experiment))
    return LabStatus("running", "", _states(progress, current), experiment)


def lab_checks_update(*, progress: LabProgress, events: list[Event]) -> tuple[LabProgress, CheckResult | None]:
    """Latch the checks that now pass on the learner's experiment; the lab completes when all have."""
    checks = [check_from_json(data) for data in progress.lab.checks]
    before = Progress.from_json(progress.checks_state)
    started = progress.started_t if progress.started_t is not None else float("-inf")
    # Each check counts only after the learner pressed its step's button, measured against the seconds before.
    triggers = check_triggers(progress.lab.steps, checks)
    after, current = progress_update(checks, before, events, triggers=triggers, started=started)
    if after != before:  # a check latched, or the learner's action (and its baseline) was first seen
        progress.checks_state = after.to_json()
        fields = ["checks_state", "updated_at"]
        if len(after.passed) == len(checks) and progress.completed_at is None:
            progress.completed_at = timezone.now()
            fields.append("completed_at")
        progress.save(update_fields=fields)
    return progress, current
