"""Writes for practice: loading and importing questions, starting attempts, grading answers."""

import random
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from lessons.models import Lesson
from lessons.rendering import render_markdown
from meshlearn.content import ContentError, LoadReport, content_upsert

from . import review, selectors
from .content_files import parse_question_directory, question_fingerprint
from .formats.types import QuestionData
from .importing import import_file_check
from .models import Attempt, Option, Question, QuestionImport, Response, ReviewCard, SolutionStep
from .shuffle import shuffled_order
from .tasks import question_import_task
from .validation import question_problems

MIXED_PRACTICE_SIZE = 10


class PracticeError(Exception):
    """A request the learner can fix (nothing to practise, a tampered answer); the message says how."""


class NothingToPractise(PracticeError):
    pass


class InvalidAnswer(PracticeError):
    pass


# --------------------------------------------------------------------------- authoring


def question_render(*, question: Question) -> None:
    question.stem_html = render_markdown(question.stem)


def question_save(*, question: Question) -> Question:
    question_render(question=question)
    question.save()
    return question


def _sync_options(question: Question, data: QuestionData) -> None:
    """Keep options whose text is unchanged (so past responses and statistics still point at
    them), update their flags and feedback, add new ones, drop the rest."""
    existing = {option.text: option for option in question.options.all()}
    keep = []
    for order, option_data in enumerate(data.options):
        option = existing.pop(option_data.text, None) or Option(question=question, text=option_data.text)
        option.is_correct = option_data.correct
        option.feedback = option_data.feedback
        option.order = order
        option.save()
        keep.append(option.pk)
    question.options.exclude(pk__in=keep).delete()


def questions_upsert(
    *, questions: list[QuestionData], default_lesson: Lesson | None = None, source: str = "import"
) -> LoadReport:
    """Create or update questions by key in one transaction: all of them, or none."""
    lessons = {lesson.slug: lesson for lesson in Lesson.objects.all()}
    for data in questions:  # validate everything before the first write
        problems = question_problems(data)
        if problems:
            raise ContentError(source, f"question {data.key!r} {problems[0]}")
        if data.category and data.category not in lessons:
            raise ContentError(source, f"question {data.key!r}: category {data.category!r} is not a lesson slug")
        if not data.category and default_lesson is None:
            raise ContentError(source, f"question {data.key!r} names no lesson: add a $CATEGORY or choose a lesson")

    def write(question: Question, data: QuestionData) -> None:
        question.lesson = lessons[data.category] if data.category else default_lesson
        question.common_mistakes = list(data.common_mistakes)
        question.tags = list(data.tags)
        question_save(question=question)
        _sync_options(question, data)
        question.steps.all().delete()
        SolutionStep.objects.bulk_create(
            SolutionStep(question=question, order=index, title=step.title, body=step.body)
            for index, step in enumerate(data.steps)
        )

    with transaction.atomic():
        return content_upsert(
            model=Question,
            specs=questions,
            key="key",
            fields=("stem", "quick_check", "general_feedback", "difficulty"),
            write=write,
            fingerprint=question_fingerprint,
            create=lambda data, position: Question(key=data.key, order=position),
        )


def questions_load_all(*, lesson_slugs: set[str] | None = None) -> LoadReport:
    """Load every practice-set file; `lesson_slugs` adds lessons about to be loaded with them."""
    known = set(Lesson.objects.values_list("slug", flat=True)) | (lesson_slugs or set())
    questions = parse_question_directory(settings.COURSE_CONTENT_DIRS["quizzes"], lesson_slugs=known)
    return questions_upsert(questions=questions, source="quizzes/content")


# --------------------------------------------------------------------------- importing files


def question_import_start(
    *,
    user: AbstractBaseUser,
    content: bytes,
    filename: str,
    file_format: str,
    lesson: Lesson | None,
    refuse_unsupported: bool = False,
) -> QuestionImport:
    """Store an uploaded file and hand it to a Celery worker once this transaction commits.
    An oversized file is refused here, at once (ContentError)."""
    import_file_check(size=len(content), filename=filename)
    question_import = QuestionImport.objects.create(
        created_by=user,
        content=content,
        filename=filename,
        file_format=file_format,
        lesson=lesson,
        refuse_unsupported=refuse_unsupported,
    )
    _enqueue_import(question_import)
    return question_import


def question_import_confirm(*, question_import: QuestionImport) -> QuestionImport:
    """The instructor read the changes that lose feedback or move questions, and wants them."""
    updated = QuestionImport.objects.filter(pk=question_import.pk, status=QuestionImport.Status.CONFIRM).update(
        confirmed=True, status=QuestionImport.Status.QUEUED, done=0
    )
    if updated:
        _enqueue_import(question_import)
    question_import.refresh_from_db()
    return question_import


def _enqueue_import(question_import: QuestionImport) -> None:
    question_import_task.delay_on_commit(question_import.pk)


# --------------------------------------------------------------------------- practice


def _choose_questions(*, user: AbstractBaseUser, kind: str, lesson: Lesson | None) -> list[int]:
    published = selectors.learner_questions()
    if kind == Attempt.Kind.LESSON:
        return list(published.filter(lesson=lesson).values_list("id", flat=True))
    if kind == Attempt.Kind.MIXED:
        ids = list(published.values_list("id", flat=True))
        return random.sample(ids, min(MIXED_PRACTICE_SIZE, len(ids)))
    if kind == Attempt.Kind.MISSED:
        return selectors.missed_question_ids(user=user)
    if kind == Attempt.Kind.REVIEW:
        return selectors.due_question_ids(user=user)
    raise PracticeError(f"Unknown practice kind {kind!r}.")


EMPTY_MESSAGES = {
    Attempt.Kind.LESSON: "This lesson has no practice questions yet.",
    Attempt.Kind.MIXED: "There are no practice questions yet.",
    Attempt.Kind.MISSED: "Nothing to retry: you have not missed any question yet.",
    Attempt.Kind.REVIEW: "Nothing is due for review right now. Missed questions come back here when they are due.",
}


def attempt_start(*, user: AbstractBaseUser, kind: str, lesson: Lesson | None = None) -> Attempt:
    question_ids = _choose_questions(user=user, kind=kind, lesson=lesson)
    if not question_ids:
        raise NothingToPractise(EMPTY_MESSAGES[kind])
    return Attempt.objects.create(user=user, kind=kind, lesson=lesson, question_ids=question_ids)


@dataclass(frozen=True)
class Submission:
    response: Response
    created: bool  # False when this answer had already been recorded (double click, second tab)
    finished: bool  # True once every question of the attempt has an answer


def _parse_option_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except (TypeError, ValueError, AttributeError):
        raise InvalidAnswer("That answer is not one of the options. Reload the question and pick an option.") from None


def response_submit(*, attempt: Attempt, question_id: int, option_public_id: str) -> Submission:
    """Grade one answer on the server. The first answer to a question in an attempt is the one
    recorded; repeating it (or racing it from another tab) returns that same response."""
    if question_id not in attempt.question_ids:
        raise InvalidAnswer("That question is not part of this practice session.")
    public_id = _parse_option_id(option_public_id)
    recorded = Response.objects.filter(attempt=attempt, question_id=question_id).first()
    if recorded is not None:
        return Submission(response=recorded, created=False, finished=_is_finished(attempt))
    options = list(Option.objects.filter(question_id=question_id, question__in=selectors.learner_questions()))
    option = next((candidate for candidate in options if candidate.public_id == public_id), None)
    if option is None:
        raise InvalidAnswer(
            "That answer is not one of this question's options. Reload the question and pick an option."
        )
    shown = shuffled_order([candidate.id for candidate in options], seed=attempt.shuffle_seed, question_id=question_id)
    try:
        with transaction.atomic():
            # Lock the attempt so two last answers arriving together cannot both miss the finish.
            Attempt.objects.select_for_update().filter(pk=attempt.pk).values_list("pk").first()
            response = Response.objects.create(
                attempt=attempt, question_id=question_id, option=option, is_correct=option.is_correct, shown_order=shown
            )
            finished = _finish_if_complete(attempt)
            _review_update(user_id=attempt.user_id, question_id=question_id, correct=option.is_correct)
    except IntegrityError:  # the same question was answered in this attempt a moment ago: keep that answer
        recorded = Response.objects.filter(attempt=attempt, question_id=question_id).first()
        if recorded is None:
            raise
        return Submission(response=recorded, created=False, finished=_is_finished(attempt))
    return Submission(response=response, created=True, finished=finished)


def _is_finished(attempt: Attempt) -> bool:
    return Attempt.objects.filter(pk=attempt.pk, finished_at__isnull=False).exists()


def _finish_if_complete(attempt: Attempt) -> bool:
    """Finished when every question that still exists has an answer in this attempt."""
    if selectors.next_question_id(attempt=attempt) is not None:
        return False
    Attempt.objects.filter(pk=attempt.pk).update(finished_at=timezone.now())
    return True


def _review_update(*, user_id: int, question_id: int, correct: bool) -> None:
    """Missed questions enter the review queue; every later answer reschedules them.
    Runs inside the submission's transaction."""
    now = timezone.now()
    card = ReviewCard.objects.select_for_update().filter(user_id=user_id, question_id=question_id).first()
    if card is None:
        if correct:
            return  # a question never missed needs no review
        state, due = review.review(review.new_state(), correct=False, now=now)
        # get_or_create absorbs another tab creating the same card a moment earlier
        card, created = ReviewCard.objects.get_or_create(
            user_id=user_id, question_id=question_id, defaults={"state": state, "due": due, "lapses": 1}
        )
        if created:
            return
    card.state, card.due = review.review(card.state, correct=correct, now=now)
    card.lapses += 0 if correct else 1
    card.save(update_fields=["state", "due", "lapses", "updated_at"])
