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
from lessons.services import LoadReport
from meshlearn.content import ContentError
from quizzes.models import Option, Question, new_seed
from quizzes.services import InvalidAnswer, questions_upsert
from quizzes.shuffle import shuffled_order
from sandbox.mesh.events import Event

from .checks import Progress, check_from_json, progress_update
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
    report = LoadReport()
    with transaction.atomic():
        taken = Question.objects.filter(key__in=[spec.prediction.key for spec in specs], lab__isnull=True)
        taken = taken.exclude(key__in=Lab.objects.values_list("prediction__key", flat=True))
        for question in taken:
            raise ContentError("labs/content", f"prediction key {question.key!r} is already a practice question's key")
        questions_upsert(questions=[spec.prediction for spec in specs], source="labs/content")
        predictions = {q.key: q for q in Question.objects.filter(key__in=[spec.prediction.key for spec in specs])}
        # Predictions are asked on the lab page, before acting; out of context they make poor practice.
        Question.objects.filter(pk__in=[q.pk for q in predictions.values()]).update(published=False)
        lessons = {lesson.slug: lesson for lesson in Lesson.objects.all()}
        existing = {lab.slug: lab for lab in Lab.objects.filter(slug__in=[spec.slug for spec in specs])}
        for spec in specs:
            lab = existing.get(spec.slug)
            if lab is not None and lab.source_hash == spec.source_hash:
                report.unchanged += 1
                continue
            if lab is None:
                lab = Lab(slug=spec.slug)
                report.created += 1
            else:
                report.updated += 1
            lab.lesson = lessons[spec.lesson]
            lab.prediction = predictions[spec.prediction.key]
            for field in ("title", "order", "topology", "goal", "start_commands", "steps", "checks", "explanation",
                          "source_path", "source_hash"):
                setattr(lab, field, getattr(spec, field))
            lab_save(lab=lab)
    return report


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
    shown = shuffled_order([candidate.id for candidate in options], seed=progress.shuffle_seed, question_id=lab.prediction_id)
    with transaction.atomic():
        updated = LabProgress.objects.filter(pk=progress.pk, predicted_at__isnull=True).update(
            option=option, prediction_correct=option.is_correct, shown_order=shown, predicted_at=timezone.now())
    progress.refresh_from_db()
    return PredictionResult(progress, created=bool(updated))


def lab_checks_update(*, progress: LabProgress, events: list[Event]) -> LabProgress:
    """Latch the checks that now pass on the learner's experiment; the lab completes when all have."""
    if progress.completed_at is not None and progress.experiment_id is None:
        return progress
    checks = [check_from_json(data) for data in progress.lab.checks]
    before = Progress.from_json(progress.checks_state)
    started = progress.started_t if progress.started_t is not None else float("-inf")
    after, _ = progress_update(checks, before, events, started=started)
    if after.passed != before.passed:
        progress.checks_state = after.to_json()
        fields = ["checks_state", "updated_at"]
        if len(after.passed) == len(checks) and progress.completed_at is None:
            progress.completed_at = timezone.now()
            fields.append("completed_at")
        progress.save(update_fields=fields)
    return progress


def lab_restart(*, progress: LabProgress) -> LabProgress:
    """Forget the checks passed on the current run (the prediction and a past completion stay)."""
    progress.checks_state = {}
    progress.experiment_id = None
    progress.started_t = None
    progress.save(update_fields=["checks_state", "experiment_id", "started_t", "updated_at"])
    return progress
