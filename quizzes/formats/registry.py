"""The question file formats, by name: the one list the importer, the exporter, the admin and the management
commands read. The first is the default, for a file nothing else recognises."""

from __future__ import annotations

from quizzes.formats import aiken, gift
from quizzes.formats.types import QuestionFormat

FORMATS: dict[str, QuestionFormat] = {declared.name: declared for declared in (gift.FORMAT, aiken.FORMAT)}
DEFAULT = next(iter(FORMATS.values()))


def format_names() -> str:
    """ "gift or aiken", for a message that says what to choose."""
    names = list(FORMATS)
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


def format_get(name: str) -> QuestionFormat | None:
    return FORMATS.get(name)


def format_recognised(text: str) -> QuestionFormat | None:
    """The format whose own check says the text reads as it (the default has none), else None."""
    return next((declared for declared in FORMATS.values() if declared.recognise and declared.recognise(text)), None)


def format_guess(filename: str, content: bytes) -> QuestionFormat:
    """By the file name's ending, then by what the text reads as, else the default."""
    for declared in FORMATS.values():
        if any(filename.endswith(suffix) for suffix in declared.suffixes):
            return declared
    return format_recognised(content.decode("utf-8", "replace")) or DEFAULT


def format_hint(content: bytes, *, read_as: QuestionFormat) -> str:
    """For a file refused by the format it was guessed as: another format whose telltale word it holds."""
    if format_recognised(content.decode("utf-8", "replace")) is not None:
        return ""
    for declared in FORMATS.values():
        if declared is not read_as and declared.telltale and declared.telltale in content:
            return f" If this is an {declared.label} file, pass --format {declared.name}."
    return ""
