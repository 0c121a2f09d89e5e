"""Export questions as GIFT or Aiken, all of them or one lesson's."""

from django.core.management.base import BaseCommand, CommandError

from quizzes.exchange import questions_export
from quizzes.formats.registry import DEFAULT, FORMATS
from quizzes.models import Question


class Command(BaseCommand):
    help = "Write questions as GIFT (default) or Aiken to standard output."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--format", choices=list(FORMATS), default=DEFAULT.name)
        parser.add_argument("--lesson", help="Only this lesson's questions (slug).")

    def handle(self, *args, format: str, lesson: str | None, **options) -> None:
        questions = Question.objects.all()
        if lesson:
            questions = questions.filter(lesson__slug=lesson)
        try:
            text = questions_export(questions=questions, file_format=format)
        except ValueError as exc:
            raise CommandError(f"Nothing was exported. {exc}") from exc
        self.stdout.write(text, ending="")
