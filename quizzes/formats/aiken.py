"""Aiken import and export: stem, lettered options and ANSWER line, without feedback (no Django).

A question is its stem (one or more lines), options ``A. text`` or ``A) text`` in
letter order (the space after the letter may be missing, ``A)text``, as Moodle accepts), then
``ANSWER: B``; a blank line separates questions. A malformed question is reported with its line
and the reason and left out; the others are read, as Moodle imports question by question. Aiken carries no
feedback, steps, keys or categories: import gives options with empty feedback and a key
made from the stem; export writes only the stem, the options in their stored order with
letters derived from that order, and the answer letter. The first line is always stem;
after it, any line that reads like ``B. text`` is an option.

Aiken is plain text: ``<b>`` or ``**`` in a file show as written (stored as escaped Markdown).

Export is lossy where Aiken has no way to say something: blank lines inside a stem are
dropped and a newline inside an option becomes a space. A stem line that would read as an
option or an ANSWER line cannot be written and raises ValueError.
"""

from __future__ import annotations

import re
import string

from quizzes.formats.keys import KeyAllocator, key_from_stem, shorten
from quizzes.formats.text import plain_to_markdown
from quizzes.formats.types import FormatError, Malformed, OptionData, ParsedFile, QuestionData, QuestionFormat

OPTION_LINE = re.compile(r"^([A-Z])[.)][ \t]*(\S.*)$")
ANSWER_LINE = re.compile(r"^ANSWER\s*:(.*)$")
LETTERS = string.ascii_uppercase


def parse_aiken(text: str) -> list[QuestionData]:
    """All questions of an Aiken file, or FormatError at the first problem (never a partial list)."""
    parsed = read_aiken(text)
    if parsed.malformed:
        first = parsed.malformed[0]
        raise FormatError(first.line, first.reason)
    return parsed.questions


def read_aiken(text: str) -> ParsedFile:
    """The good questions, and each malformed one by line and reason (a blank line ends a question,
    so one bad question never takes its neighbours with it)."""
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    questions: list[QuestionData] = []
    malformed: list[Malformed] = []
    keys = KeyAllocator()
    block: list[tuple[int, str]] = []
    for number, line in enumerate([*lines, ""], start=1):
        if line.strip():
            block.append((number, line.strip()))
        elif block:
            try:
                question = _read_question(block)
            except FormatError as exc:
                malformed.append(Malformed(line=exc.line, reason=exc.reason))
            else:
                question.key = keys.claim(question.key)
                questions.append(question)
            block = []
    return ParsedFile(questions=questions, malformed=malformed)


def _read_question(block: list[tuple[int, str]]) -> QuestionData:
    start = block[0][0]
    if _starts_with_options(block):
        # Moodle's "question not started": the question's own line is missing above its options.
        raise FormatError(
            start, f"option '{shorten(block[0][1])}' has no question before it; write the question above its options"
        )
    stem_lines: list[str] = []
    options: list[str] = []
    answer: tuple[int, str] | None = None
    for number, line in block:
        if answer is not None:
            raise FormatError(number, "text after the ANSWER line; separate questions with a blank line")
        answer_match = ANSWER_LINE.match(line)
        if answer_match:
            if not stem_lines:
                raise FormatError(number, "ANSWER line with no question before it")
            answer = (number, answer_match.group(1).strip())
            continue
        option_match = OPTION_LINE.match(line)
        if option_match and not options and option_match.group(1) != "A":
            option_match = None  # before option A, "I.e. the retry one" or "U.S.-wide?" is more of the stem
        if option_match and stem_lines:
            expected = LETTERS[len(options)] if len(options) < len(LETTERS) else "?"
            if option_match.group(1) != expected:
                raise FormatError(number, f"option letter {option_match.group(1)} out of sequence; expected {expected}")
            options.append(option_match.group(2).strip())
            continue
        if options:
            raise FormatError(number, f"expected option '{LETTERS[len(options)]}.' or 'ANSWER: <letter>' here")
        stem_lines.append(line)

    stem = "\n".join(stem_lines)
    label = shorten(stem)
    if answer is None:
        raise FormatError(start, f"question '{label}' has no 'ANSWER: <letter>' line")
    if len(options) < 2:
        noun = "option" if len(options) == 1 else "options"
        raise FormatError(start, f"question '{label}' has {len(options)} {noun}; at least 2 are needed")
    answer_line, letter = answer
    if not re.fullmatch(r"[A-Z]", letter):
        raise FormatError(answer_line, f"ANSWER must name one option letter, as in 'ANSWER: B' (found '{letter}')")
    if LETTERS.index(letter) >= len(options):
        last = LETTERS[len(options) - 1]
        raise FormatError(answer_line, f"ANSWER: {letter} names no option; the options are A–{last}")
    return QuestionData(
        key=key_from_stem(stem),
        stem=plain_to_markdown(stem),
        options=[
            OptionData(text=plain_to_markdown(text), correct=LETTERS[i] == letter) for i, text in enumerate(options)
        ],
        line=start,
        titled=False,
    )


def _starts_with_options(block: list[tuple[int, str]]) -> bool:
    """An 'A.' line followed by nothing, 'B.' or the ANSWER line is an option, not a stem: a stem that
    merely begins like 'A. Smith wrote ...' is followed by its own option A."""
    first = OPTION_LINE.match(block[0][1])
    if not first or first.group(1) != "A":
        return False
    if len(block) == 1:
        return True
    second = OPTION_LINE.match(block[1][1])
    return bool(ANSWER_LINE.match(block[1][1]) or (second and second.group(1) == "B"))


def export_aiken(questions: list[QuestionData]) -> str:
    """An Aiken file of the questions (ValueError for a question Aiken cannot express)."""
    out: list[str] = []
    for question in questions:
        out += _question_lines(question)
        out.append("")
    return "\n".join(out)


def _question_lines(question: QuestionData) -> list[str]:
    name = f"question '{question.key}'"
    stem_lines = [line.strip() for line in _lines(question.stem) if line.strip()]
    if not stem_lines:
        raise ValueError(f"{name} has an empty stem")
    for index, line in enumerate(stem_lines):
        option = OPTION_LINE.match(line)
        # Only an 'A.' line ends a stem when read back (before option A, other letters stay stem text).
        if ANSWER_LINE.match(line) or (index and option and option.group(1) == "A"):
            raise ValueError(f"{name}: stem line '{shorten(line)}' would read as an Aiken option or ANSWER line")
    if not 2 <= len(question.options) <= len(LETTERS):
        raise ValueError(f"{name} needs between 2 and {len(LETTERS)} options for Aiken")
    correct = [i for i, option in enumerate(question.options) if option.correct]
    if len(correct) != 1:
        raise ValueError(f"{name} needs exactly one correct option for Aiken")

    lines = list(stem_lines)
    for letter, option in zip(LETTERS, question.options):
        text = " ".join(part.strip() for part in _lines(option.text) if part.strip())
        if not text:
            raise ValueError(f"{name} has an option with no text")
        lines.append(f"{letter}. {text}")
    lines.append(f"ANSWER: {LETTERS[correct[0]]}")
    return lines


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def looks_like_aiken(text: str) -> bool:
    """Lettered options and ANSWER lines, and none of GIFT's braces."""
    if "{" in text or "}" in text:
        return False
    lines = [line.strip() for line in text.splitlines()]
    return any(ANSWER_LINE.match(line) for line in lines) and any(OPTION_LINE.match(line) for line in lines)


FORMAT = QuestionFormat(
    name="aiken",
    label="Aiken",
    read=read_aiken,
    export=export_aiken,
    plain_text=True,
    suffixes=(".aiken",),
    recognise=looks_like_aiken,
    telltale=b"ANSWER",
)
