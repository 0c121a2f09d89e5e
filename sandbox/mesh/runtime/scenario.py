"""Scenario files: a timeline of learner actions ("at 5 s: service b fails 50% with 503").

Format (YAML): a list of `{at, ...command}`, each command in the one vocabulary of `commands.py`
(the same JSON the site's forms and the experiment runtime take):

    name: b-flaky
    actions:
      - {at: 5s, action: fail, service: b, percent: 50, status: 503}
      - {at: 15s, action: heal, service: b}

The experiment runtime (`experiment.py`) applies each step on its own schedule and reports the steps it did
not reach before the end of the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.mesh.config.files import load_yaml, read_text
from sandbox.mesh.config.model import Topology
from sandbox.mesh.config.schema import SchemaError, expect_duration
from sandbox.mesh.runtime.commands import (
    CommandError,
    describe,
    parse_command,
)


class ScenarioError(SchemaError):
    """A scenario that cannot be used: its field path and the reason, like every schema refusal."""


@dataclass(frozen=True)
class Step:
    at: float
    action: str
    args: dict = field(default_factory=dict)  # the command's other fields, as written

    def describe(self) -> str:
        """The step in the learner's words, the same words the command says once applied."""
        try:
            return describe(parse_command(self.command_json(), None))
        except CommandError:
            # A step that only a topology can refuse (e.g. replica 3 of two) still gets a name.
            return self.action

    def command_json(self) -> dict:
        return {"action": self.action, **self.args}


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]


MAX_STEP_TIME = 3600.0  # seconds; an experiment is minutes long


def parse_time(value: Any, path: str) -> float:
    """A step's time: the schema's one duration parser ("250ms", "2s", "1.5" seconds)."""
    try:
        return expect_duration(value, path, 0.0, MAX_STEP_TIME)
    except SchemaError as exc:
        raise ScenarioError(exc.path, exc.reason) from None


def load_scenario(path: str | Path, topology: Topology | None = None) -> Scenario:
    """A scenario file: .yaml/.yml, bounded in size, UTF-8, strict YAML (files.read_text)."""
    return parse_scenario(read_text(path, error=ScenarioError), default_name=Path(path).stem, topology=topology)


def parse_scenario(text: str, *, default_name: str = "scenario", topology: Topology | None = None) -> Scenario:
    """Each step's command is checked by `parse_command`: against `topology` when given (its services and
    replicas), else for its shape alone."""
    doc = load_yaml(text, error=ScenarioError) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("actions"), list):
        raise ScenarioError("(top level)", "a scenario is a mapping with an `actions` list")
    steps = []
    for i, raw in enumerate(doc["actions"]):
        path = f"actions[{i}]"
        if not isinstance(raw, dict) or "action" not in raw or "at" not in raw:
            raise ScenarioError(path, "needs `at` and `action`")
        args = {k: v for k, v in raw.items() if k != "at"}
        try:
            parse_command(args, topology)
        except CommandError as exc:
            raise ScenarioError(f"{path}.{exc.field}" if exc.field else path, exc.reason) from exc
        del args["action"]
        steps.append(Step(parse_time(raw["at"], f"{path}.at"), raw["action"], args))
    return Scenario(str(doc.get("name", default_name)), tuple(sorted(steps, key=lambda s: s.at)))
