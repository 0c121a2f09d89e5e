"""Lab progress for the lesson pages: `{% lab_overview as labs %}` once, then `{% labs_of labs lesson as items %}`."""

from django import template

from labs import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def lab_overview(context, lesson=None):
    return selectors.lab_overview(user=context["request"].user, lesson=lesson)


@register.simple_tag
def labs_of(overview, lesson):
    return overview.of_lesson(lesson)
