"""The checks every field of the mesh is read with: one `SchemaError` (`<field path>: <reason>`, bounded in
length), `show` for quoting a refused value safely, durations, and the `expect_*` checks the field table
(schema.py), the learner's commands and the operator ops share."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sandbox.mesh.config.model import RETRY_CONDITIONS_IN_ORDER
from sandbox.mesh.config.spiffe import SpiffeIdError, parse_spiffe_id

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
RETRY_CONDITIONS = RETRY_CONDITIONS_IN_ORDER

# Refusals are shown to learners and written to logs: keep them to one readable line.
MAX_PATH_CHARS = 200
MAX_REASON_CHARS = 400
MAX_SHOWN_VALUE_CHARS = 60

_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")  # used with fullmatch: "a\n" is not a name
_DURATION = re.compile(r"(\d{1,12}(?:\.\d{1,12})?)\s*(ms|s|m)?")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())  # one line: no newline from a value can split a message
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SchemaError(ValueError):
    """A value that cannot be used: `path` names the field (e.g. services[1].replicas), `reason` says why."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = _clip(path, MAX_PATH_CHARS)
        self.reason = _clip(reason, MAX_REASON_CHARS)
        super().__init__(f"{self.path}: {self.reason}")


# --------------------------------------------------------------------------- showing values


def show(value: Any) -> str:
    """A value as a refusal quotes it: short, on one line, never raising (even for a 5,000-digit int)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        # YAML 1.1 reads yes/no/on/off as booleans: say so, it is a common surprise.
        return f"{value} (a YAML boolean; quote it if you meant text)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, int):
        if abs(value) >= 10**30:
            return "a number with more than 30 digits"
        return repr(value)
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value we cannot even print is named by its type
        text = f"a {type(value).__name__}"
    return _clip(text, MAX_SHOWN_VALUE_CHARS)


def format_duration(seconds: float) -> str:
    """250ms, 2s: how bounds and values are written back to a learner."""
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


# --------------------------------------------------------------------------- durations


def parse_duration(value: Any) -> float:
    """Seconds from "200ms", "2s", "1.5", "1.5s", "1m" or a plain number of seconds; ValueError otherwise.

    The one duration parser of the engine: topology, pushed config, scenario times and forms use it."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a duration")
    if isinstance(value, int):
        if value < 0 or value > 10**12:
            raise ValueError("a duration is a number of seconds from 0 up")
        return float(value)
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            raise ValueError("a duration is a finite number of seconds, not negative")
        return value
    if isinstance(value, str) and len(value) <= 40:
        match = _DURATION.fullmatch(value.strip())
        if match:
            return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError(f"not a duration: {show(value)}")


# --------------------------------------------------------------------------- scalar checks


def expect_mapping(value: Any, path: str, *, required: Iterable[str] = (), optional: Iterable[str] = ()) -> dict:
    """A mapping with only the given keys (unknown keys refused, required keys present)."""
    required, optional = tuple(required), tuple(optional)
    if not isinstance(value, Mapping):
        raise SchemaError(path, f"must be a mapping, got {show(value)}")
    allowed = required + optional
    for key in value:
        if not isinstance(key, str) or key not in allowed:
            raise SchemaError(_child(path, key), f"unknown key; expected one of {', '.join(allowed)}")
    for key in required:
        if key not in value:
            raise SchemaError(_child(path, key), "required")
    return dict(value)


def _child(path: str, key: Any) -> str:
    name = key if isinstance(key, str) else show(key)
    return str(name) if path.startswith("(") else f"{path}.{name}"


def expect_list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise SchemaError(path, f"must be a list, got {show(value)}")
    return value


def expect_whole(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SchemaError(path, f"must be a whole number from {low} to {high}, got {show(value)}")
    return value


def expect_number(value: Any, path: str, low: float, high: float) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if ok and isinstance(value, int):
        ok = low <= value <= high  # compared as ints: float() of a huge int would overflow
    elif ok:
        ok = math.isfinite(value) and low <= value <= high
    if not ok:
        raise SchemaError(path, f"must be a number from {low:g} to {high:g}, got {show(value)}")
    return float(value)


def expect_boolean(value: Any, path: str) -> bool:
    # Strict: the string "false" is not False (bool("false") is True).
    if not isinstance(value, bool):
        raise SchemaError(path, f"must be true or false, got {show(value)}")
    return value


def expect_choice(value: Any, path: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise SchemaError(path, f"must be one of {', '.join(choices)}, got {show(value)}")
    return value


def expect_name(value: Any, path: str) -> str:
    """A DNS label: topology, service and namespace names."""
    if not isinstance(value, str) or not _DNS_LABEL.fullmatch(value):
        raise SchemaError(
            path, f"must be lower-case letters, digits and '-', starting with a letter, got {show(value)}"
        )
    return value


def expect_duration(value: Any, path: str, low: float, high: float) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = math.nan
    if not low <= seconds <= high:
        raise SchemaError(
            path,
            f"must be a duration from {format_duration(low)} to {format_duration(high)} "
            f"(like 250ms, 2s or a number of seconds), got {show(value)}",
        )
    return seconds


def _retry_on(raw: Any, path: str) -> frozenset[str]:
    # Istio writes retryOn as one comma-separated string; a list reads better. Take both.
    if isinstance(raw, str):
        items, item_path = [part.strip() for part in raw.split(",")], lambda i: path
    else:
        items, item_path = expect_list(raw, path), lambda i: f"{path}[{i}]"
    if not items:
        raise SchemaError(path, f"must name at least one of {', '.join(RETRY_CONDITIONS)}")
    for index, item in enumerate(items):
        expect_choice(item, item_path(index), RETRY_CONDITIONS)
    return frozenset(items)


def _source(raw: Any, path: str) -> str:
    if isinstance(raw, str) and raw.startswith("spiffe://"):
        try:
            parse_spiffe_id(raw)
        except SpiffeIdError as exc:
            raise SchemaError(path, str(exc)) from None
        return raw
    if not isinstance(raw, str) or not _DNS_LABEL.fullmatch(raw):
        raise SchemaError(path, f"must be a service name or a SPIFFE ID (spiffe://...), got {show(raw)}")
    return raw


def _request_path(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or not raw.startswith("/") or any(c.isspace() for c in raw) or len(raw) > 1024:
        raise SchemaError(path, f"must be a URL path starting with '/', got {show(raw)}")
    if "*" in raw[:-1]:
        raise SchemaError(path, f"'*' is only allowed at the end (a prefix match), got {show(raw)}")
    return raw
