"""Shared pieces for loading course content files: the error type and front-matter parsing."""

import re
from pathlib import Path

import yaml

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
