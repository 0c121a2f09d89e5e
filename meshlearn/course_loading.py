"""Loading the whole course from its content files: the one place that drives every app's loader.

It sits above the apps (it imports lessons, quizzes and labs), apart from the shared base the apps import
(`content`, `db`, `fields`, `middleware`, `admin_mixins`, `roles`), which imports no app."""

from django.conf import settings
from django.db import transaction

from labs.services import labs_parse_all, labs_write
from lessons.content_files import parse_lesson_directory
from lessons.services import lessons_write
from meshlearn.content import LoadReport
from quizzes.services import questions_load_all


def course_load() -> dict[str, LoadReport]:
    """Lessons, their practice sets and their labs from the content files, all or nothing: every file is
    parsed first, and the writes share one transaction."""
    specs = parse_lesson_directory(settings.COURSE_CONTENT_DIRS["lessons"])
    slugs = {spec.slug for spec in specs}
    labs = labs_parse_all(lesson_slugs=slugs)
    with transaction.atomic():
        lessons = lessons_write(specs=specs)
        questions = questions_load_all(lesson_slugs=slugs)
        lab_report = labs_write(specs=labs)
    return {"Lessons": lessons, "Questions": questions, "Labs": lab_report}
