import pytest

from quizzes.models import Attempt
from quizzes.services import attempt_start
from tests.factories import LessonFactory, QuestionFactory


@pytest.fixture
def practice_lesson(db):
    lesson = LessonFactory(slug="sidecars", title="Sidecars")
    for _ in range(3):
        QuestionFactory(lesson=lesson)
    return lesson


@pytest.fixture
def attempt(learner, practice_lesson) -> Attempt:
    return attempt_start(user=learner, kind=Attempt.Kind.LESSON, lesson=practice_lesson)


def correct_option(question_id):
    from quizzes.models import Option

    return Option.objects.get(question_id=question_id, is_correct=True)


def wrong_option(question_id):
    from quizzes.models import Option

    return Option.objects.filter(question_id=question_id, is_correct=False).first()
