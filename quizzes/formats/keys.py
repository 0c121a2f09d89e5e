"""Stable question keys for imported questions that carry no title of their own."""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_KEY_LENGTH = 60


def key_from_stem(stem: str) -> str:
    """A slug of the stem's words, the same for the same stem on every import.

    A stem with no ASCII letters or digits (all symbols, or another script) gets a
    short hash of its text instead, so the key is still stable.
    """
    ascii_text = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > MAX_KEY_LENGTH:
        # Cut at a word boundary so keys stay readable.
        slug = slug[:MAX_KEY_LENGTH].rsplit("-", 1)[0] or slug[:MAX_KEY_LENGTH]
    if not slug:
        slug = "question-" + hashlib.sha1(stem.encode("utf-8")).hexdigest()[:10]
    return slug


class KeyAllocator:
    """Hands out unique keys: key, key-2, key-3 ... remembering where each base stopped, so that
    ten thousand questions with the same stem cost ten thousand steps, not fifty million."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.next_suffix: dict[str, int] = {}

    def claim(self, key: str) -> str:
        candidate, n = key, self.next_suffix.get(key, 2)
        if candidate in self.used:
            candidate = f"{key}-{n}"
            while candidate in self.used:
                n += 1
                candidate = f"{key}-{n}"
            n += 1
        self.next_suffix[key] = n
        self.used.add(candidate)
        return candidate


def shorten(text: str, limit: int = 40) -> str:
    """A question's text cut to fit an error message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
