"""Import questions from a GIFT or Aiken file, synchronously: every good question, each other one
reported by line (or, when asked, all of them or none)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lessons.models import Lesson
from meshlearn.content import ContentError
from quizzes.formats.registry import DEFAULT, FORMATS, format_guess, format_hint
from quizzes.importing import MAX_IMPORT_BYTES, questions_import


class Command(BaseCommand):
    help = (
        f"Import questions from a GIFT or Aiken file (up to {MAX_IMPORT_BYTES // (1024 * 1024)} MB). Every good "
        "question is imported; each malformed one, or one of another type, is listed by line with the reason and "
        "left out. A GIFT file that cannot be read at all is refused whole, naming the line."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--format",
            choices=list(FORMATS),
            help=f"Default: guessed from the file's name and text, else {DEFAULT.name}.",
        )
        parser.add_argument(
            "--lesson", help="Lesson slug for questions whose $CATEGORY is not a lesson (and every Aiken question)."
        )
        parser.add_argument(
            "--all-or-nothing",
            "--refuse-unsupported",
            dest="refuse_unsupported",
            action="store_true",
            help="Refuse the whole file if any question would be left out (malformed, or of another type).",
        )
        parser.add_argument(
            "--confirm",
            action="store_true",
            help="Apply changes that drop feedback or move questions to another lesson.",
        )

    def handle(
        self,
        *args,
        path: Path,
        format: str | None,
        lesson: str | None,
        refuse_unsupported: bool,
        confirm: bool,
        **options,
    ) -> None:
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        content = path.read_bytes()
        file_format = format or format_guess(path.name, content).name
        default_lesson = None
        if lesson:
            default_lesson = Lesson.objects.filter(slug=lesson).first()
            if default_lesson is None:
                raise CommandError(f"--lesson {lesson!r} is not a lesson slug.")
        try:
            report = questions_import(
                content=content,
                file_format=file_format,
                default_lesson=default_lesson,
                filename=path.name,
                refuse_unsupported=refuse_unsupported,
                confirm=confirm,
            )
        except ContentError as exc:
            hint = "" if format else format_hint(content, read_as=FORMATS[file_format])
            raise CommandError(f"Nothing was imported. {exc}{hint}") from exc
        for item in report.unsupported:
            self.stdout.write(f"{path.name}: line {item.line}: {item.kind} question '{item.label}' not imported")
        for item in report.malformed:
            self.stdout.write(f"{path.name}: line {item.line}: {item.reason}; not imported")
        if not report.applied:
            lines = [f"  line {item.line}: {item.key}: {'; '.join(item.reasons)}" for item in report.confirmations]
            raise CommandError(
                "Nothing was imported. These changes lose something; pass --confirm to apply them:\n" + "\n".join(lines)
            )
        self.stdout.write(self.style.SUCCESS(f"{path.name}: {report}"))
