"""Reads lesson files (Markdown with YAML front matter) into validated specs, touching no database."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from meshlearn.content import SLUG_PATTERN, ContentError, read_text, require_keys, split_front_matter

from .rendering import RENDERING_VERSION


@dataclass(frozen=True)
class LessonSpec:
    slug: str
    title: str
    order: int
    summary: str
    minutes: int
    objectives: list[str]
    body_markdown: str
    source_path: str
    source_hash: str


def parse_lesson_file(path: Path) -> LessonSpec:
    text = read_text(path)
    header, body = split_front_matter(path, text)
    require_keys(path, header, {"slug", "title", "order"}, {"summary", "minutes", "objectives"})
    slug = header["slug"]
    if not isinstance(slug, str) or not SLUG_PATTERN.match(slug):
        raise ContentError(path, f"slug must be lowercase letters, digits and hyphens, got {slug!r}")
    title = header["title"]
    if not isinstance(title, str) or not title.strip():
        raise ContentError(path, "title must be a non-empty text")
    order = header["order"]
    if not isinstance(order, int) or isinstance(order, bool) or order < 0:
        raise ContentError(path, f"order must be a whole number of 0 or more, got {order!r}")
    minutes = header.get("minutes", 10)
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 240:
        raise ContentError(path, f"minutes must be a whole number from 1 to 240, got {minutes!r}")
    objectives = header.get("objectives", [])
    if not isinstance(objectives, list) or not all(isinstance(item, str) and item.strip() for item in objectives):
        raise ContentError(path, "objectives must be a list of non-empty sentences")
    summary = header.get("summary", "")
    if not isinstance(summary, str):
        raise ContentError(path, "summary must be text")
    if not body.strip():
        raise ContentError(path, "has no lesson body after the front matter")
    return LessonSpec(
        slug=slug,
        title=title.strip(),
        order=order,
        summary=summary.strip(),
        minutes=minutes,
        objectives=[item.strip() for item in objectives],
        body_markdown=body.strip() + "\n",
        source_path=path.name,
        # The renderer's version is part of the hash: a new renderer re-renders every lesson once.
        source_hash=hashlib.sha256(f"{RENDERING_VERSION}\n{text}".encode()).hexdigest(),
    )


def parse_lesson_directory(directory: Path) -> list[LessonSpec]:
    """Parse every lesson file; refuse the whole set if any file is bad or slugs/orders collide."""
    specs = [parse_lesson_file(path) for path in sorted(directory.glob("*.md"))]
    for field in ("slug", "order"):
        seen: dict[object, str] = {}
        for spec in specs:
            value = getattr(spec, field)
            if value in seen:
                raise ContentError(spec.source_path, f"{field} {value!r} is already used by {seen[value]}")
            seen[value] = spec.source_path
    return specs
