"""Reads practice-set files (quizzes/content/<lesson-slug>.yaml) into validated QuestionData."""

import hashlib
import json
from pathlib import Path

from meshlearn.content import SLUG_PATTERN, ContentError, load_yaml, read_text, require_keys

from .formats.types import OptionData, QuestionData, StepData
from .validation import question_problems

QUESTION_KEYS = {"key", "stem", "options"}
QUESTION_OPTIONAL = {"tags", "difficulty", "steps", "quick_check", "common_mistakes", "general_feedback"}


def _text(path: Path, where: str, value: object, name: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ContentError(path, f"{where}: {name} must be {'non-empty ' if required else ''}text")
    return value.strip()


def _string_list(path: Path, where: str, value: object, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ContentError(path, f"{where}: {name} must be a list of non-empty texts")
    return [item.strip() for item in value]


def _question(path: Path, index: int, raw: object, category: str) -> QuestionData:
    where = f"questions[{index}]"
    if not isinstance(raw, dict):
        raise ContentError(path, f"{where}: must be a mapping with key, stem and options")
    if isinstance(raw.get("key"), str):
        where = f"{where} ({raw['key']})"
    require_keys(path, raw, QUESTION_KEYS, QUESTION_OPTIONAL, where)
    key = _text(path, where, raw["key"], "key")
    if not SLUG_PATTERN.match(key):
        raise ContentError(path, f"{where}: key must be lowercase letters, digits and hyphens")
    options_raw = raw["options"]
    if not isinstance(options_raw, list):
        raise ContentError(path, f"{where}: options must be a list")
    options = []
    for number, option in enumerate(options_raw):
        spot = f"{where}.options[{number}]"
        if not isinstance(option, dict):
            raise ContentError(path, f"{spot}: must be a mapping with text, feedback and optionally correct")
        require_keys(path, option, {"text"}, {"correct", "feedback"}, spot)
        correct = option.get("correct", False)
        if not isinstance(correct, bool):
            raise ContentError(path, f"{spot}: correct must be true or false")
        options.append(
            OptionData(
                text=_text(path, spot, option["text"], "text"),
                correct=correct,
                feedback=_text(path, spot, option.get("feedback"), "feedback", required=False),
            )
        )
    steps = []
    for number, step in enumerate(raw.get("steps") or []):
        spot = f"{where}.steps[{number}]"
        if not isinstance(step, dict):
            raise ContentError(path, f"{spot}: must be a mapping with title and body")
        require_keys(path, step, {"title", "body"}, set(), spot)
        steps.append(
            StepData(title=_text(path, spot, step["title"], "title"), body=_text(path, spot, step["body"], "body"))
        )
    difficulty = raw.get("difficulty", "medium")
    question = QuestionData(
        key=key,
        stem=_text(path, where, raw["stem"], "stem"),
        options=options,
        category=category,
        steps=steps,
        quick_check=_text(path, where, raw.get("quick_check"), "quick_check", required=False),
        common_mistakes=_string_list(path, where, raw.get("common_mistakes"), "common_mistakes"),
        general_feedback=_text(path, where, raw.get("general_feedback"), "general_feedback", required=False),
        tags=_string_list(path, where, raw.get("tags"), "tags"),
        difficulty=difficulty,
    )
    problems = question_problems(question)
    if problems:
        raise ContentError(path, f"{where}: {problems[0]}")
    return question


def parse_question_file(path: Path) -> list[QuestionData]:
    data = load_yaml(path, read_text(path))
    if not isinstance(data, dict):
        raise ContentError(path, "must be a mapping with 'lesson' and 'questions'")
    require_keys(path, data, {"lesson", "questions"}, set())
    lesson = data["lesson"]
    if not isinstance(lesson, str) or not SLUG_PATTERN.match(lesson):
        raise ContentError(path, "lesson must be a lesson slug")
    if not isinstance(data["questions"], list) or not data["questions"]:
        raise ContentError(path, "questions must be a non-empty list")
    return [_question(path, index, raw, lesson) for index, raw in enumerate(data["questions"])]


def parse_question_directory(directory: Path, *, lesson_slugs: set[str]) -> list[QuestionData]:
    """Every practice set; a file naming a lesson that does not exist is refused by name."""
    questions: list[QuestionData] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        parsed = parse_question_file(path)
        if parsed[0].category not in lesson_slugs:
            raise ContentError(path, f"lesson {parsed[0].category!r} is not the slug of any lesson")
        for question in parsed:
            if question.key in seen:
                raise ContentError(path, f"question key {question.key!r} is already used in {seen[question.key]}")
            seen[question.key] = path.name
            questions.append(question)
    return questions


def question_fingerprint(question: QuestionData) -> str:
    """A hash of everything authored, so an unchanged question is skipped on reload."""
    authored = {name: value for name, value in vars(question).items() if name not in {"line", "titled"}}
    return hashlib.sha256(json.dumps(authored, default=vars, sort_keys=True).encode()).hexdigest()
