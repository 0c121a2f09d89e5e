"""Learner-facing question text rendered the way the stem is: sanitised Markdown.

Options, feedback, solution steps, the final answer, the quick check and common mistakes are all
authored in Markdown, so `code` and **emphasis** show as formatting everywhere, never as raw marks.
"""

from functools import lru_cache

from django import template
from django.utils.safestring import SafeString, mark_safe

from lessons.rendering import render_markdown

register = template.Library()


@lru_cache(maxsize=4096)  # the same few hundred texts are shown over and over
def _render(text: str, inline: bool) -> str:
    html = render_markdown(text).strip()
    if inline and html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1:
        html = html[3:-4]  # one paragraph: its content only, so it fits inside a label or a heading
    return html


@register.filter(is_safe=True)
def inline_markdown(text: object) -> SafeString:
    """A short text (an option, a step title) as inline HTML."""
    return mark_safe(_render(str(text or ""), True))


@register.filter(is_safe=True)
def markdown(text: object) -> SafeString:
    """A text that may hold paragraphs or lists (feedback, a step's body) as block HTML."""
    return mark_safe(_render(str(text or ""), False))
