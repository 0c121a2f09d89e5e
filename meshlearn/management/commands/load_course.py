"""Load the course (lessons, then their practice questions) from the content files, idempotently."""

from django.core.management.base import BaseCommand, CommandError

from meshlearn.content import ContentError
from meshlearn.course_loading import course_load


class Command(BaseCommand):
    help = "Load lessons and practice questions from the repository's content files. Safe to run again."

    def handle(self, *args, **options) -> None:
        try:
            reports = course_load()
        except ContentError as exc:
            raise CommandError(f"Nothing was loaded. {exc}") from exc
        for label, report in reports.items():
            self.stdout.write(self.style.SUCCESS(f"{label}: {report}"))
