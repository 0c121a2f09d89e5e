"""Rules every single-answer question must satisfy, wherever it comes from (files, imports, admin)."""

import re

from .formats.types import QuestionData

LETTER_REFERENCE = re.compile(r"\b[Oo]ption [A-D]\b|=\s*[A-D]\b")
DIFFICULTIES = {"easy", "medium", "hard"}


def question_problems(question: QuestionData) -> list[str]:
    """What is wrong with a question, in words an author can act on; empty when it is fine."""
    problems = []
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
    authored = [question.stem, question.quick_check, *(step.body for step in question.steps), *(step.title for step in question.steps)]
    if any(LETTER_REFERENCE.search(text) for text in authored):
        problems.append("mentions an option letter (like 'Option B'); options are shuffled, so refer to the answer by its text")
    return problems
