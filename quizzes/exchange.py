"""GIFT and Aiken export of questions, and the mapping from the models to plain question data.
Importing lives in importing.py."""

from collections.abc import Iterable

from .formats import aiken, gift
from .formats.types import OptionData, QuestionData, StepData
from .models import Question

EXPORTERS = {"gift": gift.export_gift, "aiken": aiken.export_aiken}


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
    if file_format not in EXPORTERS:
        raise ValueError(f"Unknown format {file_format!r}; use gift or aiken.")
    queryset = (
        Question.objects.filter(pk__in=[q.pk for q in questions])
        .select_related("lesson")
        .prefetch_related("options", "steps")
    )
    return EXPORTERS[file_format]([question_to_data(question) for question in queryset])
