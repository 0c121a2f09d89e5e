"""Moodle GIFT import and export for single-answer multiple-choice questions (no Django).

What is read
    ``// comments``; ``$CATEGORY: name`` (sets the category of the questions after it; a
    Moodle path such as ``$course$/top/why-service-mesh`` gives its last segment);
    ``::Title::`` (becomes the key; without a title a stable slug of the stem is used);
    the stem before ``{``; options ``=right`` and ``~wrong``, also weighted ``~%100%``
    (right) and ``~%0%`` / ``~%-33.3%`` (wrong); ``#feedback`` after an option;
    ``####general feedback`` last in the braces; the escapes ``\\~ \\= \\# \\{ \\} \\:``,
    ``\\\\`` and ``\\n``; questions over several lines, separated by a blank line;
    ``[markdown]``/``[html]``/``[plain]``/``[moodle]`` format markers: as in Moodle, the
    stem's marker is the format of the options and feedback too, unless one carries its own;
    ``[plain]`` text is stored so that it shows exactly as written (see ``text.py``).
    Text after ``}`` (Moodle's missing-word form) stays in the stem with ``_____`` where
    the answers were.

Other question types (true/false, short answer, numerical, matching, essay, description,
multiple answers or partial credit) are not imported: ``read_gift`` reports each by line and
type, and the caller decides whether to import the rest or refuse the file. A malformed
question (an unclosed brace, no correct option ...) still refuses the whole file.

How MeshLearn's extra fields travel inside a GIFT file
    Our export writes, for every question, a comment line and a structured general
    feedback. Moodle ignores the comment and shows the feedback as readable text::

        // tags: retries, timeouts; difficulty: easy
        ::retry-storm:: [markdown]Three hops each retry 3 times. How many calls can one request cause? {
        =27 #Right: 3 × 3 × 3.
        ~9 #Counts only two hops.
        ####Any free general feedback, on one line (newlines written as \\n)
        Step 1: Count the tries per hop
        Each hop makes up to 3 tries.
        Step 2: Multiply across hops
        3 × 3 × 3 = 27.
        Quick check: 3³ = 27
        Common mistake: Adding the retries (3 + 3 + 3) instead of multiplying them.
        }

    - The stem carries ``[markdown]``: our texts are Markdown, and in Moodle the stem's format is
      the options' and feedback's too.
    - ``// tags: a, b; difficulty: easy`` before a question sets ``tags`` and ``difficulty``
      (absent: no tags, ``medium``).
    - In the general feedback, each physical line is one record. ``Step N: <title>`` starts
      a solution step; the line after it, unless it is itself a marker line, is the
      step's body. ``Quick check: ...`` and ``Common mistake: ...`` (one line each) fill
      ``quick_check`` and ``common_mistakes``. Markers are matched case-insensitively and
      only with an unescaped ``:`` — the export escapes every ``:`` of the content as
      ``\\:``, so content never reads as a marker. Every other line is free general
      feedback (our export writes it first); a general feedback with no markers, as in
      any external GIFT file, stays whole in ``general_feedback``.

Limits: surrounding whitespace of every text is dropped and ``\\r`` becomes a newline,
as in Moodle. A tag may not contain ``,`` or ``;``; a category may not contain ``/``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from quizzes.formats.keys import KeyAllocator, key_from_stem, shorten
from quizzes.formats.text import FORMAT_PREFIX, split_format, to_markdown
from quizzes.formats.types import (
    FormatError,
    OptionData,
    ParsedFile,
    QuestionData,
    QuestionFormat,
    StepData,
    Unsupported,
)

SPECIAL_CHARACTERS = "~=#{}:"
DEFAULT_FORMAT = "moodle"  # Moodle's own default when a text names none
# One question is a few hundred characters; a block far beyond that is a broken file, refused before
# it is expanded character by character.
MAX_QUESTION_CHARACTERS = 50_000
WEIGHT = re.compile(r"^%(-?\d+(?:\.\d+)?)%")
STEP_MARKER = re.compile(r"^step\s+(\d+)\s*:", re.IGNORECASE)
QUICK_CHECK_MARKER = re.compile(r"^quick\s+check\s*:", re.IGNORECASE)
MISTAKE_MARKER = re.compile(r"^common\s+mistakes?\s*:", re.IGNORECASE)
CATEGORY_PREFIX = "$CATEGORY:"
DEFAULT_DIFFICULTY = "medium"


# --- reading ---------------------------------------------------------------------------


class _Char(NamedTuple):
    """One character of a question after unescaping; only unescaped ones are syntax."""

    ch: str
    escaped: bool
    line: int


Chars = list[_Char]


def parse_gift(text: str) -> list[QuestionData]:
    """All questions of a GIFT file, or FormatError at the first problem or unsupported question."""
    parsed = read_gift(text)
    if parsed.unsupported:
        first = parsed.unsupported[0]
        raise FormatError(first.line, f"{first.kind} questions are not supported; only multiple choice")
    return parsed.questions


def read_gift(text: str) -> ParsedFile:
    """The multiple-choice questions of a GIFT file and the unsupported ones by line, or FormatError
    at the first malformed question (never a partial list). Time and memory grow linearly with the file."""
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    reader = _Reader()
    block: list[tuple[int, str]] = []
    # A blank line ends a question, so one more blank line flushes the last one.
    size = 0
    for number, line in enumerate([*lines, ""], start=1):
        if line.strip():
            block.append((number, line))
            size += len(line)
            if size > MAX_QUESTION_CHARACTERS:
                raise FormatError(
                    block[0][0],
                    f"one question runs over {MAX_QUESTION_CHARACTERS:,} characters; "
                    "separate questions with a blank line",
                )
        elif block:
            reader.read_block(block)
            block, size = [], 0
    return ParsedFile(questions=reader.questions, unsupported=reader.unsupported)


class _Reader:
    """Carries the state that runs across questions: category, pending metadata, keys seen."""

    def __init__(self) -> None:
        self.questions: list[QuestionData] = []
        self.unsupported: list[Unsupported] = []
        self.category = ""
        self.metadata: tuple[list[str], str] | None = None
        self.key_lines: dict[str, int] = {}
        self.keys = KeyAllocator()

    def read_block(self, block: list[tuple[int, str]]) -> None:
        question_lines: list[tuple[int, str]] = []
        for number, line in block:
            stripped = line.strip()
            if stripped.startswith("//"):
                metadata = _metadata_from_comment(stripped)
                if metadata is not None:
                    self.metadata = metadata
                continue
            if not question_lines and stripped.startswith(CATEGORY_PREFIX):
                self.category = _category_from_path(stripped[len(CATEGORY_PREFIX) :])
                continue
            question_lines.append((number, line))
        if question_lines:
            read = self.read_question(question_lines)
            (self.unsupported if isinstance(read, Unsupported) else self.questions).append(read)
            self.metadata = None

    def read_question(self, lines: list[tuple[int, str]]) -> QuestionData | Unsupported:
        start = lines[0][0]
        chars = _strip(_scan(lines))
        title, chars = _split_title(chars, start)

        opening, closing = _find(chars, "{"), _find(chars, "}")
        if opening < 0 and closing < 0:
            return Unsupported(start, "description", title or shorten(_text(chars)))
        if opening < 0 or 0 <= closing < opening:
            raise FormatError(chars[closing].line, "'}' without an opening '{'")
        if closing < 0:
            raise FormatError(chars[opening].line, "unclosed '{' — every question needs a closing '}'")
        nested = _find(chars, "{", opening + 1)
        if 0 <= nested < closing:
            raise FormatError(chars[nested].line, "a second '{' before the closing '}'; write a literal brace as \\{")
        after = chars[closing + 1 :]
        for brace in "{}":
            extra = _find(after, brace)
            if extra >= 0:
                raise FormatError(
                    after[extra].line, "a second answer block in one question; separate questions with a blank line"
                )

        stem_chars = chars[:opening]
        if _strip(after):
            # Moodle's missing-word form: the answers stand for a blank inside the sentence.
            stem_chars = stem_chars + [_Char(c, True, start) for c in "_____"] + after
        stem_text, stem_format = split_format(_text(_strip(stem_chars)), DEFAULT_FORMAT)
        if not stem_text:
            raise FormatError(start, "question has no text before '{'")
        stem = to_markdown(stem_text, stem_format)
        label = f"'{title}'" if title else f"'{shorten(stem_text)}'"

        answer_chars, feedback_chars = _split_general_feedback(chars[opening + 1 : closing])
        kind = _unsupported_kind(_strip(answer_chars))
        if kind:
            return Unsupported(start, kind, title or shorten(stem_text))
        options = _read_options(answer_chars, start, label, stem_format)
        if options is None:
            return Unsupported(start, "multiple-answer (partial credit)", title or shorten(stem_text))
        general_feedback, steps, quick_check, mistakes = _read_general_feedback(feedback_chars, stem_format)

        key = self.claim_key(title, stem_text, start)
        tags, difficulty = self.metadata or ([], DEFAULT_DIFFICULTY)
        return QuestionData(
            key=key,
            stem=stem,
            options=options,
            category=self.category,
            steps=steps,
            quick_check=quick_check,
            common_mistakes=mistakes,
            general_feedback=general_feedback,
            tags=list(tags),
            difficulty=difficulty,
            line=start,
            titled=title is not None,
        )

    def claim_key(self, title: str | None, stem: str, start: int) -> str:
        if title is None:
            key = self.keys.claim(key_from_stem(stem))
        elif title in self.key_lines:
            raise FormatError(
                start,
                f"question key '{title}' is used twice (first at line {self.key_lines[title]}); "
                "give each question a unique ::title::",
            )
        else:
            key = self.keys.claim(title)
        self.key_lines[key] = start
        return key


def _scan(lines: list[tuple[int, str]]) -> Chars:
    """The question's characters with GIFT escapes resolved; physical line breaks stay unescaped."""
    chars: Chars = []
    for index, (number, line) in enumerate(lines):
        if index:
            chars.append(_Char("\n", False, number))
        i = 0
        while i < len(line):
            c = line[i]
            following = line[i + 1] if i + 1 < len(line) else ""
            if c == "\\" and following and following in "\\n" + SPECIAL_CHARACTERS:
                chars.append(_Char("\n" if following == "n" else following, True, number))
                i += 2
            else:
                chars.append(_Char(c, False, number))
                i += 1
    return chars


def _find(chars: Chars, ch: str, start: int = 0) -> int:
    for i in range(start, len(chars)):
        if chars[i].ch == ch and not chars[i].escaped:
            return i
    return -1


def _text(chars: Chars) -> str:
    return "".join(c.ch for c in chars)


def _strip(chars: Chars) -> Chars:
    start, end = 0, len(chars)
    while start < end and chars[start].ch.isspace():
        start += 1
    while end > start and chars[end - 1].ch.isspace():
        end -= 1
    return chars[start:end]


def _syntax(chars: Chars) -> str:
    """The text with escaped characters masked, for matching syntax that must be unescaped."""
    return "".join("\0" if c.escaped else c.ch for c in chars)


def _clean_text(chars: Chars, default_format: str) -> str:
    """A text field as Markdown: trimmed, in the format its own marker names, else the question's."""
    text, text_format = split_format(_text(_strip(chars)), default_format)
    return to_markdown(text, text_format)


def _split_title(chars: Chars, start: int) -> tuple[str | None, Chars]:
    if not _syntax(chars[:2]) == "::":
        return None, chars
    syntax = _syntax(chars)
    end = syntax.find("::", 2)
    if end < 0:
        raise FormatError(start, "title opened with '::' has no closing '::'")
    title = _text(chars[2:end]).strip()
    if not title:
        raise FormatError(start, "empty title '::::'; write a title or leave out the colons")
    return title, chars[end + 2 :]


def _split_general_feedback(chars: Chars) -> tuple[Chars, Chars]:
    # Moodle takes the last '####' as the start of the general feedback.
    at = _syntax(chars).rfind("####")
    if at < 0:
        return chars, []
    return chars[:at], chars[at + 4 :]


def _unsupported_kind(answers: Chars) -> str | None:
    """The question type when it is not multiple choice, in Moodle's own order of detection."""
    syntax = _syntax(answers)
    if not answers:
        return "essay"
    if syntax.startswith("#"):
        return "numerical"
    if "~" in syntax:
        return None
    if "=" in syntax and "->" in syntax:
        return "matching"
    hash_at = _find(answers, "#")
    before_feedback = _text(answers[:hash_at] if hash_at >= 0 else answers).strip()
    if before_feedback in {"T", "TRUE", "F", "FALSE"}:
        return "true/false"
    return "short-answer"


def _read_options(answer_chars: Chars, start: int, label: str, default_format: str) -> list[OptionData] | None:
    """The options of a single-answer question; None when weights make it multiple-answer or partial credit."""
    answers = _strip(answer_chars)

    chunks: list[tuple[_Char, Chars]] = []
    leading: Chars = []
    for c in answers:
        if not c.escaped and c.ch in "=~":
            chunks.append((c, []))
        elif chunks:
            chunks[-1][1].append(c)
        else:
            leading.append(c)
    if _strip(leading):
        raise FormatError(
            _strip(leading)[0].line, "text before the first option; each option starts with '=' (right) or '~' (wrong)"
        )

    options: list[OptionData] = []
    correct_lines: list[int] = []
    for marker, chunk in chunks:
        body = _strip(chunk)
        weight_match = WEIGHT.match(_syntax(body))
        weight = float(weight_match.group(1)) if weight_match else None
        if weight_match:
            body = body[weight_match.end() :]
        hash_at = _find(body, "#")
        text_chars, feedback_chars = (body[:hash_at], body[hash_at + 1 :]) if hash_at >= 0 else (body, [])
        text = _clean_text(text_chars, default_format)
        if not text:
            raise FormatError(marker.line, f"question {label} has an option with no text after '{marker.ch}'")
        if weight is not None and weight != 100 and not (weight <= 0 and marker.ch == "~"):
            return None
        correct = marker.ch == "=" if weight is None else weight == 100
        if correct:
            correct_lines.append(marker.line)
        options.append(OptionData(text=text, correct=correct, feedback=_clean_text(feedback_chars, default_format)))

    if len(options) < 2:
        noun = "option" if len(options) == 1 else "options"
        raise FormatError(start, f"question {label} has {len(options)} {noun}; at least 2 are needed")
    if not correct_lines:
        raise FormatError(start, f"question {label} has no correct option; mark the right one with '='")
    if len(correct_lines) > 1:
        raise FormatError(
            correct_lines[1], f"question {label}: more than one correct option ('=') in a single-answer question"
        )
    return options


def _read_general_feedback(chars: Chars, default_format: str) -> tuple[str, list[StepData], str, list[str]]:
    chars = _strip(chars)
    prefix = FORMAT_PREFIX.match(_syntax(chars))
    text_format = default_format
    if prefix:
        text_format = prefix.group(1)
        chars = _strip(chars[prefix.end() :])

    def markdown(text: str) -> str:
        return to_markdown(text, text_format)

    lines: list[Chars] = [[]]
    for c in chars:
        if c.ch == "\n" and not c.escaped:
            lines.append([])
        else:
            lines[-1].append(c)
    lines = [line for line in (_strip(line) for line in lines) if line]

    free: list[str] = []
    steps: list[StepData] = []
    quick_checks: list[str] = []
    mistakes: list[str] = []
    i = 0
    while i < len(lines):
        kind, content = _marker(lines[i])
        if kind == "step":
            body = ""
            if i + 1 < len(lines) and _marker(lines[i + 1])[0] is None:
                body = markdown(_text(lines[i + 1]).strip())
                i += 1
            steps.append(StepData(title=markdown(content), body=body))
        elif kind == "quick check":
            quick_checks.append(markdown(content))
        elif kind == "mistake":
            mistakes.append(markdown(content))
        else:
            free.append(markdown(_text(lines[i])))
        i += 1
    return "\n".join(free), steps, "\n".join(quick_checks), mistakes


def _marker(line: Chars) -> tuple[str | None, str]:
    syntax = _syntax(line)
    for kind, pattern in (("step", STEP_MARKER), ("quick check", QUICK_CHECK_MARKER), ("mistake", MISTAKE_MARKER)):
        match = pattern.match(syntax)
        if match:
            return kind, _text(line[match.end() :]).strip()
    return None, ""


def _metadata_from_comment(comment: str) -> tuple[list[str], str] | None:
    """Tags and difficulty from '// tags: a, b; difficulty: easy', or None for any other comment."""
    tags: list[str] = []
    difficulty = DEFAULT_DIFFICULTY
    parts = [part for part in comment[2:].split(";") if part.strip()]
    if not parts:
        return None
    for part in parts:
        name, colon, value = part.partition(":")
        name = name.strip().lower()
        if not colon or name not in {"tags", "difficulty"}:
            return None
        if name == "tags":
            tags = [tag.strip() for tag in value.split(",") if tag.strip()]
        else:
            difficulty = value.strip() or DEFAULT_DIFFICULTY
    return tags, difficulty


def _category_from_path(raw: str) -> str:
    # '$course$/top/why-service-mesh' -> 'why-service-mesh'; '$course$/top' is the root: no category.
    path = re.sub(r"^\$[a-z]+\$/?", "", raw.strip())
    if path == "top" or path.startswith("top/"):
        path = path[3:]
    segments = [segment.strip() for segment in path.split("/") if segment.strip()]
    return segments[-1] if segments else ""


# --- writing ---------------------------------------------------------------------------


def export_gift(questions: list[QuestionData]) -> str:
    """A GIFT file that parse_gift reads back into the same questions (ValueError if one cannot be written)."""
    _check_exportable(questions)
    out = [
        "// MeshLearn questions in GIFT (single-answer multiple choice).",
        "// Steps, quick check and common mistakes are lines of the general feedback (####).",
        "",
    ]
    category = ""
    for question in questions:
        if question.category != category:
            category = question.category
            out += [f"{CATEGORY_PREFIX} $course$/top" + (f"/{category}" if category else ""), ""]
        out += _question_lines(question)
        out.append("")
    return "\n".join(out)


def _question_lines(question: QuestionData) -> list[str]:
    lines = [
        f"// tags: {', '.join(question.tags)}; difficulty: {question.difficulty}",
        # MeshLearn's texts are Markdown; the stem's marker makes Moodle render the options and feedback so too.
        f"::{_escape(question.key)}:: [markdown]{_escape(question.stem)} {{",
    ]
    for option in question.options:
        line = ("=" if option.correct else "~") + _escape_field(option.text, guard_weight=True)
        if option.feedback:
            line += " #" + _escape_field(option.feedback)
        lines.append(line)

    feedback_lines = []
    if question.general_feedback:
        feedback_lines.append(_escape_field(question.general_feedback))
    for number, step in enumerate(question.steps, start=1):
        feedback_lines.append(f"Step {number}: {_escape(step.title)}".rstrip())
        if step.body:
            body = _escape(step.body)
            # A line starting with '//' would be read as a comment; a leading escaped
            # newline keeps it text and is trimmed away on import.
            feedback_lines.append("\\n" + body if body.startswith("//") else body)
    if question.quick_check:
        feedback_lines.append(f"Quick check: {_escape(question.quick_check)}")
    for mistake in question.common_mistakes:
        feedback_lines.append(f"Common mistake: {_escape(mistake)}".rstrip())
    if feedback_lines:
        lines.append("####" + feedback_lines[0])
        lines += feedback_lines[1:]
    lines.append("}")
    return lines


def _escape(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\\", "\\\\")
    for ch in SPECIAL_CHARACTERS:
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", "\\n")


def _escape_field(text: str, guard_weight: bool = False) -> str:
    """Escaped text; a text that would read as a format prefix (or weight) gets an explicit [moodle] first."""
    escaped = _escape(text)
    if FORMAT_PREFIX.match(text) or (guard_weight and text.startswith("%")):
        escaped = "[moodle]" + escaped
    return escaped


def _check_exportable(questions: list[QuestionData]) -> None:
    keys: set[str] = set()
    for question in questions:
        name = f"question '{question.key}'"
        if not question.key.strip():
            raise ValueError("a question has an empty key")
        if question.key in keys:
            raise ValueError(f"{name} appears twice")
        keys.add(question.key)
        if not question.stem.strip():
            raise ValueError(f"{name} has an empty stem")
        if len(question.options) < 2 or sum(option.correct for option in question.options) != 1:
            raise ValueError(f"{name} needs at least 2 options and exactly one correct option")
        if any(not option.text.strip() for option in question.options):
            raise ValueError(f"{name} has an option with no text")
        if any(not tag.strip() or re.search(r"[,;\n\r]", tag) for tag in question.tags):
            raise ValueError(f"{name} has a tag that is empty or contains ',', ';' or a newline")
        if not re.fullmatch(r"[^\s;]+", question.difficulty):
            raise ValueError(f"{name} has a difficulty that is empty or contains ';' or spaces")
        if re.search(r"[/\n\r]", question.category) or question.category != question.category.strip():
            raise ValueError(f"{name} has a category with '/', a newline or surrounding spaces")


FORMAT = QuestionFormat(name="gift", label="GIFT", read=read_gift, export=export_gift)
