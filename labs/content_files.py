"""Reads lab files (labs/content/NN-slug.yaml) into validated specs, touching no database.

A file is refused with its name, the field and the reason; `load_course` loads nothing when any file is bad.
The file name gives the lab's order (NN) and slug. Fields:

    title: ...                       lesson: <lesson slug>          topology: pair | shop
    goal: ...                        start: [<command>, ...]        (optional: applied when the lab starts)
    prediction: {stem, options: [{text, correct, feedback}, ...], general_feedback}
    steps: [{text, actions: [{label, command}, ...]}, ...]
    checks: [{name, says, for, when: [<condition>, ...], after}, ...]  (grammar: labs/checks.py; `after`: optional)
    explanation: Markdown
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from meshlearn.content import SLUG_PATTERN, ContentError, load_yaml, read_text, require_keys
from quizzes.formats.types import OptionData, QuestionData
from quizzes.validation import question_problems
from sandbox.mesh.config.topology import Topology
from sandbox.mesh.runtime.commands import CommandError, parse_command
from sandbox.selectors import TOPOLOGY_NAMES, topology_get

from .checks import CheckError, check_to_json, parse_check, scaled_window, trigger_problems

FILE_NAME = re.compile(r"^(\d{2})-([a-z0-9]+(?:-[a-z0-9]+)*)\.yaml$")
REQUIRED = {"title", "lesson", "topology", "goal", "prediction", "steps", "checks", "explanation"}
OPTIONAL = {"start"}
MAX_STEPS, MAX_ACTIONS, MAX_CHECKS, MAX_LABEL = 12, 6, 4, 80


@dataclass(frozen=True)
class LabSpec:
    slug: str
    order: int
    title: str
    lesson: str
    topology: str
    goal: str
    start_commands: list[dict]
    prediction: QuestionData
    steps: list[dict]
    checks: list[dict]
    explanation: str
    source_path: str
    source_hash: str


def topology_graph(topology: Topology) -> tuple[set[str], set[tuple[str, str]]]:
    """Its services and its edges (caller, callee), with the load generator's edge to the entry."""
    edges = {("loadgen", topology.entry)}
    edges.update((service.name, callee) for service in topology.services for callee in service.calls)
    return {service.name for service in topology.services}, edges


def _text(path: Path, field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ContentError(path, f"{field}: must be non-empty text")
    return value.strip()


def _command(path: Path, field: str, value: object, topology: Topology) -> dict:
    try:
        parse_command(value, topology)  # type: ignore[arg-type]
    except CommandError as exc:
        raise ContentError(path, f"{field}.{exc.field or 'command'}: {exc.reason}") from exc
    return dict(value)  # type: ignore[arg-type]


def _prediction(path: Path, raw: object, key: str, lesson: str) -> QuestionData:
    if not isinstance(raw, dict):
        raise ContentError(path, "prediction: must be a mapping with stem and options")
    require_keys(path, raw, {"stem", "options"}, {"general_feedback"}, "prediction")
    if not isinstance(raw["options"], list):
        raise ContentError(path, "prediction.options: must be a list")
    options = []
    for index, option in enumerate(raw["options"]):
        field = f"prediction.options[{index}]"
        if not isinstance(option, dict):
            raise ContentError(path, f"{field}: must be a mapping with text, feedback and optionally correct")
        require_keys(path, option, {"text", "feedback"}, {"correct"}, field)
        correct = option.get("correct", False)
        if not isinstance(correct, bool):
            raise ContentError(path, f"{field}.correct: must be true or false")
        options.append(
            OptionData(
                text=_text(path, f"{field}.text", option["text"]),
                correct=correct,
                feedback=_text(path, f"{field}.feedback", option["feedback"]),
            )
        )
    general = raw.get("general_feedback") or ""
    if not isinstance(general, str):
        raise ContentError(path, "prediction.general_feedback: must be text")
    question = QuestionData(
        key=key,
        stem=_text(path, "prediction.stem", raw["stem"]),
        options=options,
        category=lesson,
        general_feedback=general.strip(),
        tags=["lab-prediction"],
    )
    problems = question_problems(question)
    if problems:
        raise ContentError(path, f"prediction: {problems[0]}")
    return question


def _steps(path: Path, raw: object, topology: Topology) -> list[dict]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_STEPS:
        raise ContentError(path, f"steps: must be a list of 1 to {MAX_STEPS} steps")
    steps = []
    for index, step in enumerate(raw):
        field = f"steps[{index}]"
        if not isinstance(step, dict):
            raise ContentError(path, f"{field}: must be a mapping with text and actions")
        require_keys(path, step, {"text"}, {"actions"}, field)
        actions_raw = step.get("actions") or []
        if not isinstance(actions_raw, list) or len(actions_raw) > MAX_ACTIONS:
            raise ContentError(path, f"{field}.actions: must be a list of at most {MAX_ACTIONS} buttons")
        actions = []
        for number, action in enumerate(actions_raw):
            spot = f"{field}.actions[{number}]"
            if not isinstance(action, dict):
                raise ContentError(path, f"{spot}: must be a mapping with label and command")
            require_keys(path, action, {"label", "command"}, set(), spot)
            label = _text(path, f"{spot}.label", action["label"])
            if len(label) > MAX_LABEL:
                raise ContentError(path, f"{spot}.label: at most {MAX_LABEL} characters")
            actions.append({"label": label, "command": _command(path, f"{spot}.command", action["command"], topology)})
        steps.append({"text": _text(path, f"{field}.text", step["text"]), "actions": actions})
    return steps


def _checks(path: Path, raw: object, topology: Topology, steps: list[dict], window_scale: float) -> list[dict]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CHECKS:
        raise ContentError(path, f"checks: must be a list of 1 to {MAX_CHECKS} checks")
    services, edges = topology_graph(topology)
    specs = []
    for index, item in enumerate(raw):
        try:
            spec = parse_check(item, field=f"checks[{index}]", services=services, edges=edges)
        except CheckError as exc:
            raise ContentError(path, str(exc)) from None
        specs.append(dataclasses.replace(spec, for_seconds=scaled_window(spec.for_seconds, window_scale)))
    # Every check is caused by the learner: it must have a step with buttons to wait for.
    problems = trigger_problems(steps, specs)
    if problems:
        raise ContentError(path, problems[0])
    checks = [check_to_json(spec) for spec in specs]
    names = [check["name"] for check in checks]
    if len(set(names)) != len(names):
        raise ContentError(path, "checks: two checks share a name")
    return checks


def parse_lab_file(path: Path, *, window_scale: float = 1.0) -> LabSpec:
    """`window_scale` below 1 shortens every check's window (`checks.scaled_window`): for the test suite only."""
    match = FILE_NAME.match(path.name)
    if not match:
        raise ContentError(path, "file name must be NN-slug.yaml (two digits, a hyphen, a lowercase slug)")
    text = read_text(path)
    data = load_yaml(path, text)
    if not isinstance(data, dict):
        raise ContentError(path, "must be a mapping of the lab's fields")
    require_keys(path, data, REQUIRED, OPTIONAL)
    lesson = data["lesson"]
    if not isinstance(lesson, str) or not SLUG_PATTERN.match(lesson):
        raise ContentError(path, f"lesson: must be a lesson slug, got {lesson!r}")
    if data["topology"] not in TOPOLOGY_NAMES:
        raise ContentError(path, f"topology: must be one of {', '.join(TOPOLOGY_NAMES)}, got {data['topology']!r}")
    topology = topology_get(data["topology"])
    start = data.get("start") or []
    if not isinstance(start, list):
        raise ContentError(path, "start: must be a list of commands")
    slug = match[2]
    steps = _steps(path, data["steps"], topology)
    title = _text(path, "title", data["title"])
    if len(title) > 200:
        raise ContentError(path, "title: at most 200 characters")
    return LabSpec(
        slug=slug,
        order=int(match[1]),
        title=title,
        lesson=lesson,
        topology=data["topology"],
        goal=_text(path, "goal", data["goal"]),
        start_commands=[_command(path, f"start[{index}]", command, topology) for index, command in enumerate(start)],
        prediction=_prediction(path, data["prediction"], f"lab-{slug}", lesson),
        steps=steps,
        checks=_checks(path, data["checks"], topology, steps, window_scale),
        explanation=_text(path, "explanation", data["explanation"]) + "\n",
        source_path=path.name,
        source_hash=hashlib.sha256(text.encode()).hexdigest(),
    )


def parse_lab_directory(directory: Path, *, lesson_slugs: set[str]) -> list[LabSpec]:
    """Every lab file; the whole set is refused if one file is bad, names a missing lesson, or collides."""
    specs = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        spec = parse_lab_file(path)
        if spec.lesson not in lesson_slugs:
            raise ContentError(path, f"lesson: {spec.lesson!r} is not the slug of any lesson")
        if spec.slug in seen:
            raise ContentError(path, f"slug {spec.slug!r} is already used by {seen[spec.slug]}")
        seen[spec.slug] = path.name
        specs.append(spec)
    return specs
