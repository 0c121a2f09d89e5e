"""Per-attempt option order and the letters derived from it. Letters are never stored: a letter
only means something relative to the order one learner saw."""

import random
import string


def shuffled_order(option_ids: list[int], *, seed: str, question_id: int) -> list[int]:
    """The same attempt always shows the same order (reloads, the result page); others differ."""
    order = sorted(option_ids)  # start from a canonical order so the seed alone decides
    random.Random(f"{seed}:{question_id}").shuffle(order)
    return order


def letter(index: int) -> str:
    return string.ascii_uppercase[index]


def letters_by_option(shown_order: list[int]) -> dict[int, str]:
    return {option_id: letter(index) for index, option_id in enumerate(shown_order)}
