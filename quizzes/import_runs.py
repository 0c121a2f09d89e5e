"""The worker's side of a question import: claim the queued upload, import it, record the outcome.

Apart from `services.py` (the instructor's writes, which enqueue the task): the task calls this module, so
nothing here imports the task back."""

from django.db import IntegrityError
from django.utils import timezone

from meshlearn.content import ContentError

from .importing import questions_import
from .models import QuestionImport


def question_import_run(*, import_id: int) -> QuestionImport | None:
    """Run one queued import (the Celery task's body). Safe to run twice: only a queued import starts."""
    claimed = QuestionImport.objects.filter(pk=import_id, status=QuestionImport.Status.QUEUED).update(
        status=QuestionImport.Status.RUNNING
    )
    if not claimed:
        return None
    question_import = QuestionImport.objects.select_related("lesson").get(pk=import_id)

    def progress(done: int, total: int) -> None:
        QuestionImport.objects.filter(pk=import_id).update(done=done, total=total)

    try:
        report = questions_import(
            content=bytes(question_import.content),
            file_format=question_import.file_format,
            default_lesson=question_import.lesson,
            filename=question_import.filename,
            refuse_unsupported=question_import.refuse_unsupported,
            confirm=question_import.confirmed,
            progress=progress,
        )
    except ContentError as exc:
        question_import.status, question_import.error = QuestionImport.Status.FAILED, f"Nothing was imported. {exc}"
    except IntegrityError:  # another import or an edit wrote the same question keys a moment earlier
        question_import.status = QuestionImport.Status.FAILED
        question_import.error = (
            f"Nothing was imported. {question_import.filename}: some of its questions were written by someone else "
            "while it was importing; import the file again."
        )
    except Exception:
        # Never leave the instructor watching a bar that will not move: say so, then let Celery log it.
        QuestionImport.objects.filter(pk=import_id).update(
            status=QuestionImport.Status.FAILED,
            finished_at=timezone.now(),
            error="Nothing was imported: the import stopped on an unexpected error, which was logged for the operator.",
        )
        raise
    else:
        question_import.report = report.as_json()
        question_import.status = QuestionImport.Status.DONE if report.applied else QuestionImport.Status.CONFIRM
    question_import.finished_at = timezone.now()
    question_import.save(update_fields=["status", "error", "report", "finished_at"])
    return question_import
