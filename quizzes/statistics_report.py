"""Item statistics for one practice set, over learners' finished lesson practice sessions."""

from collections import defaultdict
from dataclasses import dataclass

from lessons.models import Lesson

from .models import Attempt, Question, Response
from .statistics import ItemResponse, QuestionOptions, QuestionStats, item_analysis


@dataclass(frozen=True)
class OptionRow:
    text: str
    correct: bool
    count: int
    top_third: int
    bottom_third: int
    never_picked: bool
    favoured_by_strong: bool


@dataclass(frozen=True)
class QuestionRow:
    question: Question
    stats: QuestionStats
    options: list[OptionRow]


@dataclass(frozen=True)
class LessonStatistics:
    attempts: int
    rows: list[QuestionRow]


def lesson_statistics(*, lesson: Lesson) -> LessonStatistics:
    """Moodle's facility, SD and discrimination per question (3 queries)."""
    questions = list(Question.objects.filter(lesson=lesson).prefetch_related("options"))
    attempt_ids = list(
        Attempt.objects.filter(kind=Attempt.Kind.LESSON, lesson=lesson, finished_at__isnull=False).values_list(
            "id", flat=True
        )
    )
    answers: dict[int, dict[int, ItemResponse]] = defaultdict(dict)
    for attempt_id, question_id, option_id, correct in Response.objects.filter(attempt_id__in=attempt_ids).values_list(
        "attempt_id", "question_id", "option_id", "is_correct"
    ):
        answers[attempt_id][question_id] = ItemResponse(score=1.0 if correct else 0.0, option_id=option_id)
    options_by_question = {
        question.id: QuestionOptions(
            option_ids=[option.id for option in question.options.all()],
            correct_option_id=next((option.id for option in question.options.all() if option.is_correct), None),
        )
        for question in questions
    }
    stats = item_analysis(list(answers.values()), options_by_question)
    texts = {option.id: option.text for question in questions for option in question.options.all()}
    rows = [
        QuestionRow(
            question=question,
            stats=question_stats,
            options=[
                OptionRow(
                    text=texts[option.option_id],
                    correct=option.correct,
                    count=option.count,
                    top_third=option.top_third_count,
                    bottom_third=option.bottom_third_count,
                    never_picked=option.option_id in question_stats.unpicked_option_ids,
                    favoured_by_strong=option.favoured_by_strong_learners,
                )
                for option in question_stats.options
            ],
        )
        for question, question_stats in zip(questions, stats)
    ]
    return LessonStatistics(attempts=len(answers), rows=rows)
