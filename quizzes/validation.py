"""Rules every single-answer question must satisfy, wherever it comes from (files, imports, admin)."""

import re

from meshlearn.content import SLUG_PATTERN

from .formats.types import QuestionData

LETTER_REFERENCE = re.compile(r"\b[Oo]ption [A-D]\b|=\s*[A-D]\b")
DIFFICULTIES = {"easy", "medium", "hard"}
# Column sizes of the models, so an over-long field is refused here rather than by the database.
MAX_KEY, MAX_OPTION, MAX_QUICK_CHECK, MAX_STEP_TITLE = 120, 500, 300, 200


def question_problems(question: QuestionData) -> list[str]:
    """What is wrong with a question, in words an author can act on; empty when it is fine."""
    problems = []
    if not SLUG_PATTERN.match(question.key) or len(question.key) > MAX_KEY:
        problems.append(f"key must be lowercase letters, digits and hyphens, at most {MAX_KEY} characters")
    if any(len(option.text) > MAX_OPTION for option in question.options):
        problems.append(f"has an option longer than {MAX_OPTION} characters")
    if len(question.quick_check) > MAX_QUICK_CHECK:
        problems.append(f"quick check is longer than {MAX_QUICK_CHECK} characters")
    if any(len(step.title) > MAX_STEP_TITLE for step in question.steps):
        problems.append(f"has a step title longer than {MAX_STEP_TITLE} characters")
    if any("," in tag or ";" in tag for tag in question.tags):
        problems.append("has a tag containing ',' or ';' (tags are single words or phrases)")
    if len(question.options) < 2:
        problems.append(f"has {len(question.options)} option(s); at least 2 are needed")
    correct = sum(option.correct for option in question.options)
    if correct != 1:
        problems.append(f"has {correct} correct options; a single-answer question needs exactly 1")
    texts = [option.text.strip().lower() for option in question.options]
    if len(set(texts)) != len(texts):
        problems.append("has two options with the same text")
    if question.difficulty not in DIFFICULTIES:
        problems.append(f"difficulty must be one of easy, medium, hard, got {question.difficulty!r}")
    # Letters are derived per learner from the shuffled order, so authored text must not name one.
    authored = [
        question.stem,
        question.quick_check,
        question.general_feedback,
        *question.common_mistakes,
        *(step.body for step in question.steps),
        *(step.title for step in question.steps),
        *(option.feedback for option in question.options),
    ]
    if any(LETTER_REFERENCE.search(text) for text in authored):
        problems.append(
            "mentions an option letter (like 'Option B'); options are shuffled, so refer to the answer by its text"
        )
    return problems
