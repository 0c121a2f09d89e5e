"""Reading topology and scenario files safely: bounded size, strict UTF-8, strict and bounded YAML.

Every refusal is a one-line SchemaError ("<where>: <reason>"), never a traceback from the reader or
from PyYAML: a missing file, a file too big, bytes that are not UTF-8, a key given twice, a list used
as a key, a 5,000-digit number or nesting deep enough to exhaust the recursion limit.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from sandbox.mesh.config.schema import SchemaError

MAX_FILE_BYTES = 256 * 1024  # the biggest sensible topology is a few KiB
MAX_NESTING = 32  # a topology is 6 levels deep; a scenario 4
MAX_NUMBER_DIGITS = 100  # past this, int() slows quadratically; the schema refuses 31 already
YAML_SUFFIXES = (".yaml", ".yml")


def is_file_reference(path_or_text: str | os.PathLike[str]) -> bool:
    """A Path, or a one-line string, names a file; a string with a newline is YAML text."""
    return isinstance(path_or_text, os.PathLike) or (isinstance(path_or_text, str) and "\n" not in path_or_text)


def read_text(path: str | os.PathLike[str], *, error: type[SchemaError] = SchemaError) -> str:
    """The text of a .yaml/.yml file of at most MAX_FILE_BYTES, decoded as UTF-8."""
    name = os.fspath(path)
    shown = name if len(name) <= 120 else "..." + name[-117:]
    if not name.endswith(YAML_SUFFIXES):
        raise error(shown, "a topology or scenario file's name must end in .yaml or .yml")
    try:
        with open(name, "rb") as handle:
            # Read one byte past the limit rather than trusting stat (a FIFO or /proc file has no size).
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise error(shown, "no such file") from None
    except IsADirectoryError:
        raise error(shown, "is a directory, not a file") from None
    except OSError as exc:
        raise error(shown, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(data) > MAX_FILE_BYTES:
        raise error(shown, f"is larger than {MAX_FILE_BYTES // 1024} KiB; a mesh file is a few KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(shown, f"is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})") from None


def _where(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}"


class _Refusal(Exception):
    """Raised inside the loader; turned into the caller's error class at the boundary."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(where, reason)
        self.where, self.reason = where, reason


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (PyYAML silently keeps the last one), unhashable
    keys, deep nesting and over-long integers; merge keys (`<<: *base`) work as YAML defines them."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        # The composer recurses once per nesting level: bound it before Python's recursion limit does.
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                mark = self.peek_event().start_mark
                raise _Refusal(
                    f"line {mark.line + 1}, column {mark.column + 1}", f"nested more than {MAX_NESTING} levels deep"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    # Duplicates are looked for among the keys written here, before merge keys are expanded: a key
    # that overrides a merged one (`<<: *base` then `replicas: 3`) is the point of a merge, not a repeat.
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise _Refusal(_where(key_node), "a key must be a plain value, not a list or a mapping") from None
        if key in seen:
            raise _Refusal(
                _where(key_node), f"duplicate key {key!r} (first given on line {seen[key].start_mark.line + 1})"
            )
        seen[key] = key_node
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=deep)


def _construct_int(loader: StrictLoader, node: yaml.ScalarNode) -> int:
    digits = sum(c.isdigit() for c in node.value)
    if digits > MAX_NUMBER_DIGITS:
        raise _Refusal(_where(node), f"a number with more than {MAX_NUMBER_DIGITS} digits")
    return yaml.SafeLoader.construct_yaml_int(loader, node)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml(text: str, *, error: type[SchemaError] = SchemaError) -> Any:
    """Decode YAML text with StrictLoader; every problem becomes `error("line L, column C", reason)`."""
    if len(text) > MAX_FILE_BYTES:
        raise error("(yaml)", f"text is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass: no Python tags
    except _Refusal as exc:
        raise error(exc.where, exc.reason) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
        raise error(where, f"not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise error("(yaml)", f"not valid YAML: {exc}") from None
    except RecursionError:  # a last resort; compose_node's bound should come first
        raise error("(yaml)", f"nested more than {MAX_NESTING} levels deep") from None


def load_yaml_file(path: str | os.PathLike[str], *, error: type[SchemaError] = SchemaError) -> Any:
    """read_text, then load_yaml."""
    return load_yaml(read_text(path, error=error), error=error)
