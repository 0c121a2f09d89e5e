"""Service names in code style inside sentences the engine wrote in plain text ("service a fails 50% ...").

Descriptions are stored and streamed as plain text; the page marks every "service <name>" whose name is one
of the topology's services, so "a" the service never reads as "a" the article."""

import re
from functools import lru_cache

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from sandbox import selectors

register = template.Library()


@lru_cache(maxsize=16)
def _pattern(topology: str) -> re.Pattern | None:
    try:
        names = [service.name for service in selectors.topology_get(topology).services]
    except FileNotFoundError:  # not a shipped topology: nothing to mark, the words still show
        return None
    alternatives = "|".join(re.escape(escape(name)) for name in sorted(names, key=len, reverse=True))
    return re.compile(rf"\bservice ({alternatives})(?![\w-])")


@register.filter
def service_names(text: str, topology: str) -> SafeString:
    escaped = escape(text or "")
    pattern = _pattern(topology or "")
    if pattern is None:
        return escaped
    return mark_safe(pattern.sub(r'service <code class="service-name">\1</code>', escaped))
