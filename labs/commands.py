"""Labs speak the engine's command vocabulary (EXPERIMENT_API.md): validation and plain words come from
`sandbox.mesh.runtime.commands`, the one validator shared by scenarios, the sandbox's forms and labs."""

from __future__ import annotations

from sandbox.mesh.config.topology import Topology
from sandbox.mesh.runtime.commands import CommandError, describe, parse_command


def command_problem(data: object, topology: Topology) -> str | None:
    """None when `data` is a command the engine accepts on `topology`, else "field: reason"."""
    try:
        parse_command(data, topology)  # type: ignore[arg-type]
    except CommandError as exc:
        return f"{exc.field}: {exc.reason}" if exc.field else f"command: {exc.reason}"
    return None


def command_words(data: dict, topology: Topology) -> str:
    """What a (valid) command does, in plain words, for a button's title."""
    return describe(parse_command(data, topology))
