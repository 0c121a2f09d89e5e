"""Item statistics for one practice set, from learners' lesson practice sessions."""

from lessons.models import Lesson


def lesson_statistics(*, lesson: Lesson):
    raise NotImplementedError  # filled in when quizzes.statistics lands
