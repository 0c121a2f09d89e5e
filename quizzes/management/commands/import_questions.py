"""Import questions from a GIFT or Aiken file: all of them, or none."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lessons.models import Lesson
from meshlearn.content import ContentError
from quizzes.exchange import questions_import


class Command(BaseCommand):
    help = "Import questions from a GIFT or Aiken file. A malformed file is refused whole, naming the line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", choices=["gift", "aiken"], help="Default: from the extension (.gift) else gift.")
        parser.add_argument("--lesson", help="Lesson slug for questions without a $CATEGORY.")

    def handle(self, *args, path: Path, format: str | None, lesson: str | None, **options) -> None:
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        file_format = format or ("aiken" if path.suffix == ".aiken" else "gift")
        default_lesson = None
        if lesson:
            default_lesson = Lesson.objects.filter(slug=lesson).first()
            if default_lesson is None:
                raise CommandError(f"--lesson {lesson!r} is not a lesson slug.")
        try:
            report = questions_import(content=path.read_bytes(), file_format=file_format, default_lesson=default_lesson, filename=path.name)
        except ContentError as exc:
            raise CommandError(f"Nothing was imported. {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"{path.name}: {report}"))
