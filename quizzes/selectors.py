"""Reads for practice: what a learner sees before and after answering, history, review queue.

Nothing built for the question view carries correctness: the template gets option texts, public
ids and letters only, so the answer key cannot reach the browser before submission."""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from lessons.models import Lesson

from .models import Attempt, Question, Response, ReviewCard
from .shuffle import letters_by_option, shuffled_order


@dataclass(frozen=True)
class ShownOption:
    public_id: str
    text: str
    letter: str


@dataclass(frozen=True)
class QuestionView:
    question: Question
    number: int
    total: int
    options: list[ShownOption]


@dataclass(frozen=True)
class ResultOption:
    letter: str
    text: str
    is_correct: bool
    chosen: bool
    feedback: str


@dataclass(frozen=True)
class ResultView:
    question: Question
    number: int
    total: int
    correct: bool
    options: list[ResultOption]
    chosen: ResultOption | None
    answer: ResultOption
    finished: bool


def learner_questions() -> QuerySet[Question]:
    """The questions learners may see: published, in a published lesson. A draft lesson's questions
    stay hidden everywhere (mixed practice, missed, review, sessions started before it became a draft)."""
    return Question.objects.filter(published=True, lesson__published=True)


def attempt_get(*, attempt_id: int, user: AbstractBaseUser) -> Attempt:
    """A learner's own attempt; anyone else's is "not found", never "forbidden"."""
    attempt = Attempt.objects.filter(pk=attempt_id, user=user).select_related("lesson").first()
    if attempt is None:
        raise Http404("No such practice session.")
    return attempt


def response_get(*, attempt: Attempt, question_id: int) -> Response:
    """The learner's answer to one question of their own attempt; "not found" when there is none."""
    response = Response.objects.filter(attempt=attempt, question_id=question_id).first()
    if response is None:
        raise Http404("That question has no answer in this practice session.")
    return response


def next_question_id(*, attempt: Attempt) -> int | None:
    """The first question of the attempt not yet answered; questions deleted since are skipped."""
    unanswered = set(
        learner_questions()
        .filter(pk__in=attempt.question_ids)
        .exclude(responses__attempt=attempt)
        .values_list("id", flat=True)
    )
    return next((qid for qid in attempt.question_ids if qid in unanswered), None)


def lesson_question_count(*, lesson: Lesson) -> int:
    return lesson.questions.filter(published=True).count()


def question_view(*, attempt: Attempt, question_id: int) -> QuestionView:
    question = Question.objects.prefetch_related("options").get(pk=question_id)
    by_id = {option.id: option for option in question.options.all()}
    order = shuffled_order(list(by_id), seed=attempt.shuffle_seed, question_id=question_id)
    letters = letters_by_option(order)
    options = [
        ShownOption(public_id=str(by_id[oid].public_id), text=by_id[oid].text, letter=letters[oid]) for oid in order
    ]
    return QuestionView(
        question=question,
        number=attempt.question_ids.index(question_id) + 1,
        total=len(attempt.question_ids),
        options=options,
    )


def _graded(
    question: Question,
    order: list[int],
    chosen_id: int | None,
    *,
    number: int,
    total: int,
    finished: bool,
    correct: bool | None = None,
) -> ResultView:
    by_id = {option.id: option for option in question.options.all()}
    letters = letters_by_option(order)
    options = [
        ResultOption(
            letter=letters[oid],
            text=by_id[oid].text,
            is_correct=by_id[oid].is_correct,
            chosen=oid == chosen_id,
            feedback=by_id[oid].feedback,
        )
        for oid in order
    ]
    chosen = next((option for option in options if option.chosen), None)
    return ResultView(
        question=question,
        number=number,
        total=total,
        options=options,
        correct=bool(chosen and chosen.is_correct) if correct is None else correct,
        chosen=chosen,
        answer=next(option for option in options if option.is_correct),
        finished=finished,
    )


def result_view(*, response: Response, attempt: Attempt, finished: bool) -> ResultView:
    """The graded answer, with every letter taken from the order this learner saw."""
    question = Question.objects.prefetch_related("options", "steps").get(pk=response.question_id)
    current = [option.id for option in question.options.all()]
    # Options added after the answer go last; options removed since are skipped.
    order = [oid for oid in response.shown_order if oid in current] + [
        oid for oid in current if oid not in response.shown_order
    ]
    return _graded(
        question,
        order,
        response.option_id,
        number=attempt.question_ids.index(question.id) + 1,
        total=len(attempt.question_ids),
        finished=finished,
        correct=response.is_correct,  # graded at submission; stays true even if the option is edited later
    )


def question_preview(*, question_id: int) -> tuple[QuestionView, ResultView]:
    """For instructors: the question in authoring order, and the result after the first wrong option."""
    question = Question.objects.prefetch_related("options", "steps").get(pk=question_id)
    options = list(question.options.all())
    order = [option.id for option in options]
    letters = letters_by_option(order)
    view = QuestionView(
        question=question,
        number=1,
        total=1,
        options=[ShownOption(public_id=str(o.public_id), text=o.text, letter=letters[o.id]) for o in options],
    )
    wrong = next((option.id for option in options if not option.is_correct), None)
    return view, _graded(question, order, wrong, number=1, total=1, finished=True)


@dataclass(frozen=True)
class AttemptSummary:
    attempt: Attempt
    answered: int
    correct: int
    missed: list[Question]

    @property
    def percent(self) -> int:
        return round(100 * self.correct / self.answered) if self.answered else 0


def attempt_summary(*, attempt: Attempt) -> AttemptSummary:
    responses = list(Response.objects.filter(attempt=attempt).select_related("question"))
    return AttemptSummary(
        attempt=attempt,
        answered=len(responses),
        correct=sum(response.is_correct for response in responses),
        missed=[response.question for response in responses if not response.is_correct],
    )


def attempt_history(*, user: AbstractBaseUser) -> list[Attempt]:
    return list(
        Attempt.objects.filter(user=user)
        .select_related("lesson")
        .annotate(answered=Count("responses"), correct=Count("responses", filter=Q(responses__is_correct=True)))[:50]
    )


def missed_question_ids(*, user: AbstractBaseUser) -> list[int]:
    """Questions whose latest answer by this learner was wrong, oldest miss first."""
    latest: dict[int, bool] = {}
    for question_id, correct in (
        Response.objects.filter(attempt__user=user, question__in=learner_questions())
        .order_by("answered_at", "id")
        .values_list("question_id", "is_correct")
    ):
        latest[question_id] = correct
    return [question_id for question_id, correct in latest.items() if not correct]


def due_question_ids(*, user: AbstractBaseUser) -> list[int]:
    return list(
        ReviewCard.objects.filter(user=user, due__lte=timezone.now(), question__in=learner_questions()).values_list(
            "question_id", flat=True
        )
    )


def practice_overview(*, user: AbstractBaseUser) -> dict:
    lessons = list(
        Lesson.objects.filter(published=True).annotate(
            question_count=Count("questions", filter=Q(questions__published=True))
        )
    )
    overview = {"lessons": lessons, "question_total": sum(lesson.question_count for lesson in lessons)}
    if user.is_authenticated:
        overview["missed_count"] = len(missed_question_ids(user=user))
        overview["due_count"] = len(due_question_ids(user=user))
        next_due = (
            ReviewCard.objects.filter(user=user, due__gt=timezone.now(), question__in=learner_questions())
            .order_by("due")
            .values_list("due", flat=True)
            .first()
        )
        overview["next_due"] = next_due
        # timeuntil says "0 minutes" for anything under a minute; say what is meant instead.
        overview["next_due_soon"] = next_due is not None and next_due - timezone.now() < timedelta(minutes=1)
    return overview
