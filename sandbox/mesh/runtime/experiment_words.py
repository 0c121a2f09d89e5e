"""The experiment's words for a scenario step and for an error, on one line."""

from __future__ import annotations

from typing import Any

from sandbox.mesh.runtime.commands import (
    CommandError,
    describe,
    parse_command,
)


def describe_step(step: Any) -> str:
    try:
        return describe(parse_command({"action": step.action, **step.args}, None))
    except CommandError:
        return step.action


def _reason(exc: BaseException) -> str:
    """One line: the error's first line and, when it quotes a component's stderr, that stderr's last line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = lines[0] if len(lines) == 1 else f"{lines[0].rstrip(':')}: {lines[-1]}"
    return text if len(text) <= 300 else text[:297] + "..."
