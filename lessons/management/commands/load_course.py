"""Load the course (lessons, then practice questions) from the content files, idempotently."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lessons.services import lessons_load
from meshlearn.content import ContentError


class Command(BaseCommand):
    help = "Load lessons (and practice questions) from the repository's content files. Safe to run again."

    def handle(self, *args, **options) -> None:
        try:
            report = lessons_load(directory=settings.COURSE_CONTENT_DIRS["lessons"])
        except ContentError as exc:
            raise CommandError(f"Nothing was loaded. {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"Lessons: {report}"))
        for loader in self.extra_loaders():
            try:
                label, result = loader()
            except ContentError as exc:
                raise CommandError(f"Lessons loaded, questions not. {exc}") from exc
            self.stdout.write(self.style.SUCCESS(f"{label}: {result}"))

    def extra_loaders(self):
        """Other apps' loaders that run after lessons (questions refer to lessons)."""
        try:
            from quizzes.services import questions_load_all
        except ImportError:
            return []
        return [lambda: ("Questions", questions_load_all())]
