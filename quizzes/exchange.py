"""GIFT and Aiken export of questions, and the mapping from the models to plain question data.
Importing lives in importing.py."""

from collections.abc import Iterable

from .formats.registry import format_get, format_names
from .formats.types import OptionData, QuestionData, StepData
from .models import Question


def question_to_data(question: Question) -> QuestionData:
    return QuestionData(
        key=question.key,
        stem=question.stem,
        options=[OptionData(text=o.text, correct=o.is_correct, feedback=o.feedback) for o in question.options.all()],
        category=question.lesson.slug,
        steps=[StepData(title=s.title, body=s.body) for s in question.steps.all()],
        quick_check=question.quick_check,
        common_mistakes=list(question.common_mistakes),
        general_feedback=question.general_feedback,
        tags=list(question.tags),
        difficulty=question.difficulty,
    )


def questions_export(*, questions: Iterable[Question], file_format: str) -> str:
    declared = format_get(file_format)
    if declared is None:
        raise ValueError(f"Unknown format {file_format!r}; use {format_names()}.")
    queryset = (
        Question.objects.filter(pk__in=[q.pk for q in questions])
        .select_related("lesson")
        .prefetch_related("options", "steps")
    )
    return declared.export([question_to_data(question) for question in queryset])
