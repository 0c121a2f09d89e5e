"""The experiment's words for an error, on one line (a scenario step describes itself: Step.describe)."""

from __future__ import annotations


def _reason(exc: BaseException) -> str:
    """One line: the error's first line and, when it quotes a component's stderr, that stderr's last line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = lines[0] if len(lines) == 1 else f"{lines[0].rstrip(':')}: {lines[-1]}"
    return text if len(text) <= 300 else text[:297] + "..."
