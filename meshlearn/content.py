"""Shared pieces for loading course content files: the error type, front-matter parsing, and the one
"content spec -> model row" step that lessons, practice questions and labs all load through."""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.db import models

# Lesson slugs and question keys: lowercase words joined by single hyphens.
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class ContentError(Exception):
    """A content file that cannot be loaded; the message names the file and what is wrong."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path.name}: {problem}")


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ContentError(path, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def load_yaml(path: Path, text: str, *, first_line: int = 1) -> object:
    """Parse YAML; errors name the line in the file (`first_line` is where `text` starts)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + first_line}" if mark else ""
        raise ContentError(path, f"invalid YAML{where}: {getattr(exc, 'problem', exc)}") from exc


def split_front_matter(path: Path, text: str) -> tuple[dict, str]:
    """Split `---\\n<yaml>\\n---\\n<body>` into the parsed mapping and the body."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ContentError(path, "must start with a front matter block opened by '---' on the first line")
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            header = load_yaml(path, "".join(lines[1:index]), first_line=2)
            if not isinstance(header, dict):
                raise ContentError(path, "front matter must be a mapping of keys to values")
            return header, "".join(lines[index + 1 :])
    raise ContentError(path, "front matter is never closed: add a line with '---' after it")


def require_keys(path: Path, data: dict, required: set[str], optional: set[str], where: str = "") -> None:
    prefix = f"{where}: " if where else ""
    missing = sorted(required - data.keys())
    if missing:
        raise ContentError(path, f"{prefix}missing required key(s): {', '.join(missing)}")
    unknown = sorted(data.keys() - required - optional)
    if unknown:
        raise ContentError(path, f"{prefix}unknown key(s): {', '.join(map(str, unknown))}")


@dataclass
class LoadReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


def content_upsert(
    *,
    model: type[models.Model],
    specs: Sequence[Any],
    key: str,
    fields: Sequence[str],
    write: Callable[[Any, Any], object],
    fingerprint: Callable[[Any], str] = lambda spec: spec.source_hash,
    create: Callable[[Any, int], models.Model] | None = None,
) -> LoadReport:
    """Create or update one row per spec, matched on `key` (the same name on the spec and the model).

    A row whose `source_hash` equals the spec's fingerprint is left alone, so loading again writes only what
    changed. Otherwise the `fields` are copied from the spec, `source_hash` is set, and `write(row, spec)` sets
    what is not a plain copy and saves (each app renders its Markdown there). `create(spec, position)` makes a
    new row when a model needs more than its key. Runs inside the caller's transaction."""
    report = LoadReport()
    keys = [getattr(spec, key) for spec in specs]
    existing = {getattr(row, key): row for row in model._default_manager.filter(**{f"{key}__in": keys})}
    for position, spec in enumerate(specs):
        digest = fingerprint(spec)
        row = existing.get(getattr(spec, key))
        if row is not None and row.source_hash == digest:
            report.unchanged += 1
            continue
        if row is None:
            row = create(spec, position) if create else model(**{key: getattr(spec, key)})
            report.created += 1
        else:
            report.updated += 1
        for field in fields:
            setattr(row, field, getattr(spec, field))
        row.source_hash = digest
        write(row, spec)
    return report
