"""Markdown to safe HTML: authored content never carries script, event handlers or javascript: links."""

import re
import threading

import markdown
import nh3
from markdown.extensions.toc import slugify

MARKDOWN_EXTENSIONS = ["tables", "fenced_code", "toc", "attr_list", "admonition", "sane_lists", "def_list"]
# Every authored id lives under this prefix, so a heading "Main" or an `id="answer-error"` cannot take
# over the page's own #main (the skip link) or #answer-error (where htmx puts an answer's error).
# Page templates never use ids that start with it. Changing the rendering changes RENDERING_VERSION,
# which makes load_course render every lesson again.
AUTHORED_ID_PREFIX = "s-"
RENDERING_VERSION = "2"
MARKDOWN_CONFIG = {"toc": {"slugify": lambda value, separator: AUTHORED_ID_PREFIX + slugify(value, separator)}}

SVG_TAGS = {
    "svg",
    "g",
    "rect",
    "circle",
    "ellipse",
    "line",
    "polyline",
    "polygon",
    "path",
    "text",
    "tspan",
    "defs",
    "marker",
    "title",
    "desc",
}
TEXT_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "code",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "s",
    "small",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
}
SVG_ATTRIBUTES = {
    "viewbox",
    "viewBox",
    "x",
    "y",
    "width",
    "height",
    "rx",
    "ry",
    "cx",
    "cy",
    "r",
    "x1",
    "y1",
    "x2",
    "y2",
    "points",
    "d",
    "fill",
    "stroke",
    "stroke-width",
    "stroke-dasharray",
    "marker-end",
    "marker-start",
    "text-anchor",
    "dominant-baseline",
    "font-size",
    "font-weight",
    "transform",
    "role",
    "aria-label",
    "refX",
    "refY",
    "markerWidth",
    "markerHeight",
    "orient",
    "xmlns",
    "preserveAspectRatio",
}
GENERIC_ATTRIBUTES = {"class", "id", "title", "aria-label", "aria-hidden", "role"}

ALLOWED_ATTRIBUTES = {tag: set(GENERIC_ATTRIBUTES) for tag in TEXT_TAGS | SVG_TAGS}
ALLOWED_ATTRIBUTES["a"] |= {"href"}
ALLOWED_ATTRIBUTES["td"] |= {"colspan", "rowspan", "align"}
ALLOWED_ATTRIBUTES["th"] |= {"colspan", "rowspan", "align", "scope"}
ALLOWED_ATTRIBUTES["details"] |= {"open"}
for tag in SVG_TAGS:
    ALLOWED_ATTRIBUTES[tag] |= SVG_ATTRIBUTES


FRAGMENT_REFERENCE = re.compile(r"url\(\s*#([^)\s]+)\s*\)")


def _prefixed(name: str) -> str:
    return name if name.startswith(AUTHORED_ID_PREFIX) else AUTHORED_ID_PREFIX + name


def _prefix_authored_ids(element: str, attribute: str, value: str) -> str:
    """Put authored ids, and the in-page references to them (`#x` links, SVG `url(#x)`), under the prefix."""
    if attribute == "id":
        return _prefixed(value.strip())
    if attribute == "href" and value.startswith("#") and len(value) > 1:
        return "#" + _prefixed(value[1:])
    if attribute in {"marker-end", "marker-start"}:
        return FRAGMENT_REFERENCE.sub(lambda match: f"url(#{_prefixed(match.group(1))})", value)
    return value


def sanitise_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=TEXT_TAGS | SVG_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_prefix_authored_ids,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


_converters = threading.local()  # a Markdown instance is reusable (after reset) but not thread-safe


def _converter() -> markdown.Markdown:
    converter = getattr(_converters, "markdown", None)
    if converter is None:
        # Building one costs ten times a conversion: an import of 10,000 questions reuses it.
        converter = markdown.Markdown(
            extensions=MARKDOWN_EXTENSIONS, extension_configs=MARKDOWN_CONFIG, output_format="html"
        )
        _converters.markdown = converter
    return converter


def render_markdown(text: str) -> str:
    return sanitise_html(_converter().reset().convert(text))
