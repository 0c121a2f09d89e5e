"""Scenario files: a timeline of learner actions ("at 5 s: service b fails 50% with 503") and their runner.

Format (YAML):

    name: b-flaky
    actions:
      - {at: 5s, action: fail, service: b, percent: 50, status: 503}
      - {at: 15s, action: heal, service: b}

Actions: fail (percent, status), slow (ms), hang, heal, kill / restart (target: service|sidecar,
replica), plaintext / mtls (a workload's outbound), mtls_mode (mode), cert (fault: expired |
foreign_ca | wrong_spiffe | none), deny / allow (service, source), rate (rps of the load),
policy (traffic: {...}, validate: false pushes it unchecked, to see sidecars NACK it).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

ACTIONS = {
    "fail": {"service", "percent", "status", "replica"},
    "slow": {"service", "ms", "replica"},
    "hang": {"service", "replica"},
    "heal": {"service", "replica"},
    "kill": {"service", "target", "replica"},
    "restart": {"service", "target", "replica"},
    "plaintext": {"service"},
    "mtls": {"service"},
    "mtls_mode": {"service", "mode"},
    "cert": {"service", "fault"},
    "deny": {"service", "source"},
    "allow": {"service"},
    "rate": {"rps"},
    "policy": {"service", "traffic", "validate"},
}
REQUIRED = {"fail": {"service", "percent"}, "slow": {"service", "ms"}, "kill": {"service"}, "restart": {"service"},
            "mtls_mode": {"service", "mode"}, "cert": {"service", "fault"}, "deny": {"service", "source"},
            "rate": {"rps"}, "policy": {"service", "traffic"}}


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class Step:
    at: float
    action: str
    args: dict = field(default_factory=dict)

    def describe(self) -> str:
        details = ", ".join(f"{k}={v}" for k, v in self.args.items() if k != "traffic")
        return f"{self.action} {details}".strip()


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]


def parse_time(value: Any, path: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", str(value))
        if not match:
            raise ScenarioError(f"{path}: a time like 5s or 500ms, got {value!r}")
        seconds = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
    if seconds < 0:
        raise ScenarioError(f"{path}: must not be negative")
    return seconds


def load_scenario(path: str | Path) -> Scenario:
    return parse_scenario(Path(path).read_text(), default_name=Path(path).stem)


def parse_scenario(text: str, *, default_name: str = "scenario") -> Scenario:
    doc = yaml.safe_load(text) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("actions"), list):
        raise ScenarioError("a scenario is a mapping with an `actions` list")
    steps = []
    for i, raw in enumerate(doc["actions"]):
        path = f"actions[{i}]"
        if not isinstance(raw, dict) or "action" not in raw or "at" not in raw:
            raise ScenarioError(f"{path}: needs `at` and `action`")
        action = raw["action"]
        if action not in ACTIONS:
            raise ScenarioError(f"{path}.action: unknown action {action!r} (one of {', '.join(sorted(ACTIONS))})")
        args = {k: v for k, v in raw.items() if k not in ("at", "action")}
        unknown = set(args) - ACTIONS[action]
        if unknown:
            raise ScenarioError(f"{path}: unknown field(s) for {action}: {', '.join(sorted(unknown))}")
        missing = REQUIRED.get(action, {"service"} if "service" in ACTIONS[action] else set()) - set(args)
        if missing:
            raise ScenarioError(f"{path}: {action} needs {', '.join(sorted(missing))}")
        steps.append(Step(parse_time(raw["at"], f"{path}.at"), action, args))
    return Scenario(str(doc.get("name", default_name)), tuple(sorted(steps, key=lambda s: s.at)))


async def apply_step(mesh, step: Step, *, set_rate: Callable[[float], None] | None = None) -> str:
    """Carry out one action on a running mesh (ProcessMesh or InProcessMesh); returns what was done."""
    a = step.args
    service = a.get("service")
    replica = a.get("replica")
    if step.action == "fail":
        await mesh.set_behaviour(service, replica, error_rate=float(a["percent"]) / 100, error_status=int(a.get("status", 503)))
    elif step.action == "slow":
        await mesh.set_behaviour(service, replica, latency_ms=float(a["ms"]))
    elif step.action == "hang":
        await mesh.set_behaviour(service, replica, hang=True)
    elif step.action == "heal":
        await mesh.reset_behaviour(service, replica)
    elif step.action == "kill":
        await mesh.kill(a.get("target", "sidecar"), service, int(replica or 0))
    elif step.action == "restart":
        await mesh.restart(a.get("target", "sidecar"), service, int(replica or 0))
    elif step.action == "plaintext":
        await mesh.set_outbound_tls(service, False)
    elif step.action == "mtls":
        await mesh.set_outbound_tls(service, True)
    elif step.action == "mtls_mode":
        await mesh.set_mtls_mode(service, a["mode"])
    elif step.action == "cert":
        await mesh.set_cert_fault(service, None if a["fault"] in (None, "none") else a["fault"])
    elif step.action == "deny":
        await mesh.deny(service, a["source"])
    elif step.action == "allow":
        await mesh.set_authorization(service, None)
    elif step.action == "rate":
        if set_rate is not None:
            set_rate(float(a["rps"]))
    elif step.action == "policy":
        await mesh.set_traffic(service, a["traffic"], validate=bool(a.get("validate", True)))
    return step.describe()


async def run_scenario(mesh, scenario: Scenario, *, started: float, set_rate=None,
                       on_step: Callable[[Step, str], None] | None = None, done: list[dict] | None = None) -> list[dict]:
    """Apply each step at its time (seconds after `started`, a time.monotonic() value); each applied
    step is appended to `done` (also returned), so a caller that cancels the run keeps the record."""
    done = [] if done is None else done
    for step in scenario.steps:
        delay = started + step.at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            outcome = await apply_step(mesh, step, set_rate=set_rate)
            error = None
        except Exception as exc:  # an action that fails is reported, the run goes on
            outcome, error = step.describe(), f"{type(exc).__name__}: {exc}"
        record = {"at": step.at, "action": step.action, "did": outcome, "error": error,
                  "applied_at": round(time.monotonic() - started, 3)}
        done.append(record)
        if on_step is not None:
            on_step(step, error or outcome)
    return done
