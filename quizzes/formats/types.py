"""Plain question data exchanged by the importers, exporters and the content loader (no Django)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class OptionData:
    text: str
    correct: bool = False
    feedback: str = ""  # shown when a learner picks this option: names the misconception


@dataclass
class StepData:
    title: str
    body: str


@dataclass
class QuestionData:
    key: str  # stable identifier: GIFT title, content-file key
    stem: str
    options: list[OptionData]
    category: str = ""  # a lesson slug (GIFT $CATEGORY)
    steps: list[StepData] = field(default_factory=list)  # the step-by-step solution
    quick_check: str = ""
    common_mistakes: list[str] = field(default_factory=list)
    general_feedback: str = ""  # free text that fits nowhere above
    tags: list[str] = field(default_factory=list)
    difficulty: str = "medium"
    # Where the question came from, not what it says: left out of equality and fingerprints.
    line: int = field(default=0, compare=False)  # first line in an imported file
    titled: bool = field(default=True, compare=False)  # False when the key was made from the stem


@dataclass
class Unsupported:
    """A question of a kind MeshLearn cannot practise (true/false, essay ...), reported by line."""

    line: int
    kind: str
    label: str  # the title or the start of the stem, for the report


@dataclass
class Malformed:
    """A question that breaks the format's rules (no ANSWER line, one option ...), reported by line
    and left out while the rest of the file is imported."""

    line: int
    reason: str


@dataclass
class ParsedFile:
    questions: list[QuestionData]
    unsupported: list[Unsupported] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)


class FormatError(Exception):
    """A file that cannot be imported; names the line and the reason. Nothing is imported."""

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        self.reason = reason
        super().__init__(f"line {line}: {reason}")


@dataclass(frozen=True)
class QuestionFormat:
    """One question file format, declared once in its own module (`FORMAT = QuestionFormat(...)`): the
    importer, the exporter, the admin's form and actions and both management commands read it from
    `quizzes.formats.registry`, so a new format is one module and one line there."""

    name: str  # what --format and the admin's form take: "gift"
    label: str  # what an instructor reads: "GIFT"
    read: Callable[[str], ParsedFile]
    export: Callable[[list[QuestionData]], str]
    # Plain text (stems and options are not Markdown) and nothing but stem, options and answer: an import over
    # an existing question keeps what the format cannot say (feedback, steps, tags ...).
    plain_text: bool = False
    suffixes: tuple[str, ...] = ()  # file name endings that name this format whatever the content
    recognise: Callable[[str], bool] | None = None  # True when a file's text reads as this format
    telltale: bytes = b""  # a word a file of this format holds, for the hint when it was read as another
