"""Reads for labs: the list with a learner's progress, one lab, its prediction as the learner sees it."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from lessons.models import Lesson
from meshlearn.progress import ProgressCounts
from quizzes.models import Option
from quizzes.shuffle import letter, shuffled_order

from .models import Lab, LabProgress


def lab_queryset(*, include_drafts: bool = False) -> QuerySet[Lab]:
    labs = Lab.objects.select_related("lesson")
    return labs if include_drafts else labs.filter(published=True, lesson__published=True)


def lab_get(*, slug: str, include_drafts: bool = False) -> Lab:
    """A published lab; staff may also open drafts to preview them."""
    return get_object_or_404(lab_queryset(include_drafts=include_drafts), slug=slug)


def lab_progress_get(*, user: AbstractBaseUser | AnonymousUser, lab: Lab) -> LabProgress | None:
    if not user.is_authenticated:
        return None
    return LabProgress.objects.filter(user=user, lab=lab).select_related("option").first()


@dataclass(frozen=True)
class LabItem:
    lab: Lab
    completed: bool
    started: bool


@dataclass(frozen=True)
class LabOverview(ProgressCounts):
    items: list[LabItem]

    def of_lesson(self, lesson: Lesson) -> list[LabItem]:
        return [item for item in self.items if item.lab.lesson_id == lesson.id]


def lab_overview(*, user: AbstractBaseUser | AnonymousUser, lesson: Lesson | None = None) -> LabOverview:
    """Every published lab in course order with this learner's progress (2 queries)."""
    labs = lab_queryset()
    if lesson is not None:
        labs = labs.filter(lesson=lesson)
    progress: dict[int, LabProgress] = {}
    if user.is_authenticated:
        progress = {
            p.lab_id: p for p in LabProgress.objects.filter(user=user).only("lab_id", "completed_at", "predicted_at")
        }
    return LabOverview(
        [
            LabItem(lab, lab.id in progress and progress[lab.id].completed_at is not None, lab.id in progress)
            for lab in labs
        ]
    )


@dataclass(frozen=True)
class ShownOption:
    public_id: str
    letter: str
    text: str
    chosen: bool = False
    is_correct: bool = False  # only filled in after the learner answered
    feedback: str = ""  # likewise


def prediction_options(*, lab: Lab, progress: LabProgress | None, seed: str) -> list[ShownOption]:
    """The prediction's options in this learner's order. Before they answer, only texts and random ids
    leave the server; after, each option's correctness and the chosen one's feedback."""
    options = {option.id: option for option in Option.objects.filter(question=lab.prediction)}
    order = shuffled_order(list(options), seed=seed, question_id=lab.prediction_id)
    answered = progress is not None and progress.predicted
    shown = []
    for index, option_id in enumerate(order):
        option = options[option_id]
        chosen = answered and progress.option_id == option.id
        shown.append(
            ShownOption(
                public_id=str(option.public_id),
                letter=letter(index),
                text=option.text,
                chosen=chosen,
                is_correct=answered and option.is_correct,
                feedback=option.feedback if answered else "",
            )
        )
    return shown
