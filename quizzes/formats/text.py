"""Moodle's text formats ([html], [markdown], [plain], [moodle]) as the Markdown MeshLearn stores (no Django).

Every learner-facing question text is stored as Markdown and rendered the same way. Markdown and
Moodle's own format pass through (Markdown allows inline HTML, which the sanitiser then filters, so
[html] passes through too); plain text is escaped so that it shows exactly as written.
"""

from __future__ import annotations

import re

FORMATS = ("moodle", "html", "plain", "markdown")
FORMAT_PREFIX = re.compile(r"^\[(moodle|html|plain|markdown)\]")
# Characters Markdown would read as syntax at any position, and the HTML ones it passes through.
MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|>])")
HTML_ENTITIES = {"&": "&amp;", "<": "&lt;"}


def plain_to_markdown(text: str) -> str:
    """Markdown that renders as exactly `text`: no emphasis, no headings, no HTML, line breaks kept."""
    text = "".join(HTML_ENTITIES.get(ch, ch) for ch in text)
    text = MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
    return text.replace("\n", "  \n")


def to_markdown(text: str, text_format: str) -> str:
    return plain_to_markdown(text) if text_format == "plain" else text


def split_format(text: str, default: str) -> tuple[str, str]:
    """The text without its leading format marker, and the format it names (else `default`)."""
    match = FORMAT_PREFIX.match(text)
    if not match:
        return text, default
    return text[match.end() :].strip(), match.group(1)
