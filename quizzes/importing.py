"""Importing a GIFT or Aiken file: match each question with what is already there, plan, then write in bulk.

A question is matched by a stable key: its GIFT title when it has one, otherwise its stem (as the
format writes it), so re-importing an export neither duplicates nor overwrites a different
question. A change that would drop authored feedback or move a question to another lesson is
not done silently: the plan lists it and nothing is written until the instructor confirms.
Everything slow (decoding, parsing, matching, rendering Markdown) happens before the one short
transaction that writes the whole file with a handful of bulk statements.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from django.db import connections, models, router, transaction

from lessons.models import Lesson
from lessons.rendering import render_markdown
from meshlearn.content import SLUG_PATTERN, ContentError

from .content_files import question_fingerprint
from .exchange import question_to_data
from .formats.keys import KeyAllocator, key_from_stem, shorten
from .formats.registry import FORMATS, format_get, format_names
from .formats.text import plain_to_markdown
from .formats.types import FormatError, Malformed, OptionData, ParsedFile, QuestionData, Unsupported
from .models import Option, Question, SolutionStep
from .validation import question_problems

# Stated in the admin form and the command's help: 10,000 typical questions fit in about 2 MB.
MAX_IMPORT_BYTES = 4 * 1024 * 1024
Progress = Callable[[int, int], None]


@dataclass
class Confirmation:
    """A question the import would change in a way that loses something: shown, not done."""

    key: str
    line: int
    reasons: list[str]


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)  # keys
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unsupported: list[Unsupported] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)  # left out, each with its line and reason
    confirmations: list[Confirmation] = field(default_factory=list)
    applied: bool = False  # False when confirmations are waiting: nothing was written

    def __str__(self) -> str:
        text = f"{len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} unchanged"
        if self.unsupported:
            text += f", {len(self.unsupported)} not imported (unsupported type)"
        if self.malformed:
            text += f", {len(self.malformed)} not imported (errors)"
        return text

    def as_json(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "unsupported": [vars(item) for item in self.unsupported],
            "malformed": [vars(item) for item in self.malformed],
            "confirmations": [vars(item) for item in self.confirmations],
            "applied": self.applied,
        }


def import_file_check(*, size: int, filename: str) -> None:
    """Refuse an oversized file at once, before it is read."""
    if size > MAX_IMPORT_BYTES:
        raise ContentError(
            filename,
            f"is {size / 1024 / 1024:.1f} MB; files up to {MAX_IMPORT_BYTES // (1024 * 1024)} MB can be "
            "imported — split it into smaller files",
        )


def import_file_parse(
    *, content: bytes, file_format: str, filename: str, refuse_unsupported: bool = False
) -> ParsedFile:
    import_file_check(size=len(content), filename=filename)
    declared = format_get(file_format)
    if declared is None:
        raise ContentError(filename, f"unknown format {file_format!r}; use {format_names()}")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ContentError(filename, f"is not UTF-8 text (byte {exc.start}); save it as UTF-8 and try again") from exc
    try:
        parsed = declared.read(text)
    except FormatError as exc:
        raise ContentError(filename, str(exc)) from exc
    if refuse_unsupported:
        refuse_left_out(unsupported=parsed.unsupported, malformed=parsed.malformed, filename=filename)
    if not parsed.questions:
        if parsed.malformed:
            raise ContentError(filename, f"holds no question that can be imported: {_listed(parsed.malformed)}")
        if parsed.unsupported:
            raise ContentError(
                filename, f"holds no multiple-choice questions ({len(parsed.unsupported)} of other types)"
            )
        raise ContentError(filename, "holds no questions")
    return parsed


def _listed(malformed: list[Malformed]) -> str:
    return "; ".join(f"line {item.line}: {item.reason}" for item in malformed)


def refuse_left_out(*, unsupported: list[Unsupported], malformed: list[Malformed], filename: str) -> None:
    """All or nothing, when asked: name every question that would be left out, in one message."""
    parts = []
    if unsupported:
        listed = "; ".join(f"line {item.line}: {item.kind}" for item in unsupported)
        parts.append(f"has questions of types that cannot be imported ({listed}); only multiple choice")
    if malformed:
        parts.append(f"has questions with errors ({_listed(malformed)}); fix them and import the file again")
    if parts:
        raise ContentError(filename, ", and ".join(parts))


def _words(text: str) -> str:
    return " ".join(text.split())


def import_plan(
    *,
    parsed: ParsedFile,
    file_format: str,
    default_lesson: Lesson | None,
    filename: str,
    progress: Progress | None = None,
) -> tuple[ImportReport, list[tuple[Question | None, QuestionData]]]:
    """Match, merge and validate every question; returns the report and the writes to make."""
    lessons = {lesson.slug: lesson for lesson in Lesson.objects.all()}
    plain_text = FORMATS[file_format].plain_text
    as_written = plain_to_markdown if plain_text else (lambda text: text)
    carries_extras = not plain_text  # a plain-text format has no feedback, steps, tags or difficulty
    questions = parsed.questions
    if progress:
        progress(0, len(questions))
    existing = list(Question.objects.only("id", "key", "stem"))
    by_key = {question.key: question for question in existing}
    by_stem: dict[str, list[Question]] = {}
    for question in reversed(existing):  # reversed: pop() hands out the oldest question with that text first
        by_stem.setdefault(_words(as_written(question.stem)), []).append(question)
    keys = KeyAllocator()
    keys.used |= set(by_key)

    report = ImportReport(unsupported=list(parsed.unsupported), malformed=list(parsed.malformed))
    matched: dict[int, Question | None] = {}
    taken: set[int] = set()
    for index, data in enumerate(questions):
        if not SLUG_PATTERN.match(data.key):  # external titles ("Question 1 (intro)") become slug keys
            data.key = key_from_stem(data.key)
        match = by_key.get(data.key) if data.titled else None
        if match is None and not data.titled:
            match = _take_first_free(by_stem.get(_words(data.stem), []), taken)
        if match is not None and match.pk in taken:
            raise ContentError(filename, f"line {data.line}: question key {data.key!r} appears twice in the file")
        if match is None:
            data.key = keys.claim(data.key)
        else:
            taken.add(match.pk)
            data.key = match.key
        matched[index] = match

    full = Question.objects.filter(pk__in=taken).select_related("lesson").prefetch_related("options", "steps")
    full_by_id = {question.pk: question for question in full}
    writes: list[tuple[Question | None, QuestionData]] = []
    for index, data in enumerate(questions):
        lesson = _lesson_for(data, lessons, default_lesson, filename)
        data.category = lesson.slug
        match = matched[index]
        if match is None:
            if _left_out(data, report):
                continue
            writes.append((None, data))
            report.created.append(data.key)
        else:
            question = full_by_id[match.pk]
            before = question_to_data(question)
            after = _merge(before, data, as_written) if not carries_extras else data
            if _left_out(after, report):
                continue
            if after == before:
                report.unchanged.append(data.key)
            else:
                reasons = _losses(before, after)
                if reasons:
                    report.confirmations.append(Confirmation(key=data.key, line=data.line, reasons=reasons))
                writes.append((question, after))
                report.updated.append(data.key)
        if progress and (index % 200 == 0 or index == len(questions) - 1):
            progress(index + 1, len(questions))
    report.malformed.sort(key=lambda item: item.line)
    return report, writes


def _take_first_free(candidates: list[Question], taken: set[int]) -> Question | None:
    """The next question with this text not yet matched; each is popped once, so ten thousand identical
    stems cost ten thousand steps, not fifty million."""
    while candidates:
        question = candidates.pop()
        if question.pk not in taken:
            return question
    return None


def _lesson_for(data: QuestionData, lessons: dict[str, Lesson], default: Lesson | None, filename: str) -> Lesson:
    """A $CATEGORY naming a lesson wins; any other category (Moodle's own) goes to the chosen lesson."""
    if data.category in lessons:
        return lessons[data.category]
    if default is not None:
        return default
    if data.category:
        raise ContentError(
            filename, f"line {data.line}: category {data.category!r} is not a lesson; choose the lesson to import into"
        )
    raise ContentError(
        filename, f"line {data.line}: question {data.key!r} names no lesson; choose the lesson to import into"
    )


def _merge(before: QuestionData, data: QuestionData, as_written: Callable[[str], str]) -> QuestionData:
    """An Aiken question over an existing one: keep what Aiken cannot say (feedback, steps, tags ...),
    and the existing text wherever the file says the same thing."""
    stem = before.stem if _words(as_written(before.stem)) == _words(data.stem) else data.stem
    old_options = {_words(as_written(option.text)): option for option in before.options}
    options = []
    for option in data.options:
        old = old_options.get(_words(option.text))
        options.append(OptionData(text=old.text, correct=option.correct, feedback=old.feedback) if old else option)
    return replace(before, stem=stem, options=options, category=data.category)


def _losses(before: QuestionData, after: QuestionData) -> list[str]:
    reasons = []
    if before.category != after.category:
        reasons.append(f"moves it from lesson '{before.category}' to '{after.category}'")
    new_feedback = {option.text: option.feedback for option in after.options}
    dropped = [o.text for o in before.options if o.feedback and not new_feedback.get(o.text)]
    if dropped:
        reasons.append(f"drops the feedback of {len(dropped)} option{'s' if len(dropped) > 1 else ''}")
    for label, old, new in (
        ("general feedback", before.general_feedback, after.general_feedback),
        ("quick check", before.quick_check, after.quick_check),
    ):
        if old and not new:
            reasons.append(f"drops the {label}")
    if len(after.steps) < len(before.steps):
        reasons.append(f"drops {len(before.steps) - len(after.steps)} solution step(s)")
    if len(after.common_mistakes) < len(before.common_mistakes):
        reasons.append("drops common mistakes")
    return reasons


def _left_out(data: QuestionData, report: ImportReport) -> bool:
    """A question that breaks a rule is reported with its line and left out; the rest still come in."""
    problems = question_problems(data)
    if problems:
        name = data.key if data.titled else shorten(data.stem)
        report.malformed.append(Malformed(line=data.line, reason=f"question '{name}' {'; '.join(problems)}"))
    return bool(problems)


def import_write(*, writes: list[tuple[Question | None, QuestionData]], lessons_by_slug: dict[str, Lesson]) -> None:
    """Write the plan with bulk statements in one short transaction: all of it, or nothing."""
    rendered = [render_markdown(data.stem) for _, data in writes]  # the slow part, outside the transaction
    fields = [
        "lesson",
        "stem",
        "stem_html",
        "quick_check",
        "common_mistakes",
        "general_feedback",
        "tags",
        "difficulty",
        "source_hash",
    ]
    new_questions: list[Question] = []
    changed: list[Question] = []
    for (question, data), stem_html in zip(writes, rendered):
        target = question or Question(key=data.key, order=len(new_questions))
        target.lesson = lessons_by_slug[data.category]
        target.stem, target.stem_html = data.stem, stem_html
        target.quick_check, target.general_feedback = data.quick_check, data.general_feedback
        target.common_mistakes, target.tags = list(data.common_mistakes), list(data.tags)
        target.difficulty, target.source_hash = data.difficulty, question_fingerprint(data)
        (changed if question else new_questions).append(target)
    targets = {question.key: question for question in [*new_questions, *changed]}
    new_options = [
        (
            order,
            Option(
                question=targets[data.key],
                text=option.text,
                is_correct=option.correct,
                feedback=option.feedback,
                order=order,
            ),
        )
        for _, data in writes
        for order, option in enumerate(data.options)
    ]
    steps = [
        SolutionStep(question=targets[data.key], order=index, title=step.title, body=step.body)
        for _, data in writes
        for index, step in enumerate(data.steps)
    ]
    with transaction.atomic():
        Question.objects.bulk_create(new_questions, batch_size=500)
        _update_rows(Question, changed, fields)
        # An option whose text is unchanged stays the same row, so past answers still point at it.
        kept: dict[tuple[int, str], Option] = {
            (option.question_id, option.text): option for option in Option.objects.filter(question__in=changed)
        }
        create_options, update_options = [], []
        for order, option in new_options:
            old = kept.pop((option.question.pk, option.text), None)
            if old is None:
                create_options.append(option)
            elif (old.is_correct, old.feedback, old.order) != (option.is_correct, option.feedback, order):
                old.is_correct, old.feedback, old.order = option.is_correct, option.feedback, order
                update_options.append(old)
        Option.objects.filter(pk__in=[option.pk for option in kept.values()]).delete()
        _update_rows(Option, update_options, ["is_correct", "feedback", "order"])
        _insert_rows(Option, create_options, ["question", "public_id", "text", "is_correct", "feedback", "order"])
        SolutionStep.objects.filter(question__in=changed).delete()
        _insert_rows(SolutionStep, steps, ["question", "order", "title", "body"])


def _insert_rows(model: type[models.Model], rows: list[models.Model], fields: list[str]) -> None:
    """One prepared INSERT run for every row, for rows whose new ids nobody needs (options, steps)."""
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    columns = [model._meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    names = ", ".join(quote(column.column) for column in columns)
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
    for row in rows:
        row._prepare_related_fields_for_save(operation_name="import")  # the parent question's new id
    params = [[column.get_db_prep_save(getattr(row, column.attname), connection) for column in columns] for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _update_rows(model: type[models.Model], rows: list[models.Model], fields: list[str]) -> None:
    """One prepared UPDATE run for every row (executemany). Django's bulk_update builds a CASE per
    field and row, which took 24 s inside the transaction for 10,000 questions; this takes well under one."""
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    columns = [model._meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(column.column)} = %s" for column in columns)
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(model._meta.pk.column)} = %s"
    params = [
        [column.get_db_prep_save(getattr(row, column.attname), connection) for column in columns] + [row.pk]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def questions_import(
    *,
    content: bytes,
    file_format: str,
    default_lesson: Lesson | None,
    filename: str,
    refuse_unsupported: bool = False,
    confirm: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a file question by question: each malformed question or one of another type is left out
    and reported by line (with `refuse_unsupported`, any of them refuses the whole file, naming them
    all); a file GIFT cannot read at all raises ContentError naming the line; changes that lose
    feedback or move questions come back in `confirmations` unless `confirm` is set."""
    parsed = import_file_parse(
        content=content, file_format=file_format, filename=filename, refuse_unsupported=refuse_unsupported
    )
    report, writes = import_plan(
        parsed=parsed, file_format=file_format, default_lesson=default_lesson, filename=filename, progress=progress
    )
    if refuse_unsupported:  # questions the reader took in but the rules refuse (an option letter in the text ...)
        refuse_left_out(unsupported=[], malformed=report.malformed, filename=filename)
    if not writes and not report.unchanged and report.malformed:
        raise ContentError(filename, f"holds no question that can be imported: {_listed(report.malformed)}")
    if report.confirmations and not confirm:
        return report
    import_write(writes=writes, lessons_by_slug={lesson.slug: lesson for lesson in Lesson.objects.all()})
    report.applied = True
    return report
