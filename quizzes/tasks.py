"""Celery tasks for practice content: importing an uploaded question file outside the web request."""

from celery import shared_task

from . import import_runs


@shared_task(name="quizzes.import_questions")
def question_import_task(import_id: int) -> str:
    question_import = import_runs.question_import_run(import_id=import_id)
    return question_import.status if question_import else "skipped"
