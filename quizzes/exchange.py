"""GIFT and Aiken import/export of questions: decoding, format dispatch, model <-> data mapping."""

from collections.abc import Iterable

from lessons.models import Lesson
from lessons.services import LoadReport
from meshlearn.content import SLUG_PATTERN, ContentError

from . import services
from .formats import aiken, gift
from .formats.keys import deduplicate, key_from_stem
from .formats.types import FormatError, OptionData, QuestionData, StepData
from .models import Question

PARSERS = {"gift": gift.parse_gift, "aiken": aiken.parse_aiken}
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
    queryset = Question.objects.filter(pk__in=[q.pk for q in questions]).select_related("lesson").prefetch_related("options", "steps")
    return EXPORTERS[file_format]([question_to_data(question) for question in queryset])


def questions_import(*, content: bytes, file_format: str, default_lesson: Lesson | None, filename: str) -> LoadReport:
    """Parse a whole file, then write all of its questions in one transaction, or none."""
    if file_format not in PARSERS:
        raise ContentError(filename, f"unknown format {file_format!r}; use gift or aiken")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ContentError(filename, f"is not UTF-8 text (byte {exc.start}); save it as UTF-8 and try again") from exc
    try:
        questions = PARSERS[file_format](text)
    except FormatError as exc:
        raise ContentError(filename, str(exc)) from exc
    if not questions:
        raise ContentError(filename, "holds no questions")
    _normalise_keys(questions)
    return services.questions_upsert(questions=questions, default_lesson=default_lesson, source=filename)


def _normalise_keys(questions: list[QuestionData]) -> None:
    """External GIFT titles ("Question 1 (intro)") become slug keys, so the admin can edit them."""
    used: set[str] = set()
    for question in questions:
        key = question.key if SLUG_PATTERN.match(question.key) else key_from_stem(question.key)
        question.key = deduplicate(key, used)
        used.add(question.key)
