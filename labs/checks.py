"""Lab checks: conditions over the live mesh's events of the last N seconds, and why they do not hold yet.

Pure functions, no Django. A lab file declares each check as a mapping:

    - name: caller-shielded
      says: a barely notices while b fails half of its tries
      for: 10s
      when:
        - effective_success at entry >= 97%
        - actual_success at b <= 60%
        - retries at a->b > 0

A condition is `<metric>[<qualifier>] at <scope> <op> <threshold>`: scope is `entry` (what the load generator
saw), a service (`b`) or an edge (`a->b`, `loadgen->a`); op is one of >= <= > < ==; a threshold is a number,
a percentage (`97%`, rates only) or a duration (`250ms`, `1.5s`, latencies only), or `baseline [+|- amount]`: the
same metric over the seconds before the learner's change (averaged metrics only: rates, latencies, ratios, rps).

Over the window (the snapshots of the last `for` seconds) each metric is aggregated one way: rates are
weighted by traffic, a latency percentile must hold in every second (the worst second against an upper bound,
the best against a lower one), counts are summed, `ejected` takes the most endpoints out at once,
`circuit_open` counts the seconds the breaker was open. A check passes when every condition holds over a full
window; a passed check latches (the caller keeps it). The window only holds whole seconds after the newest
applied command (the mesh as the learner last changed it), and checks are ordered: each one only looks at
what happened after the one before it passed, so "fails, then recovers" means what it says.

Checks are causal. Each one waits for the buttons of its step (`check_triggers`: the next step with buttons after
the previous check's, or the step `after: N` names) and counts nothing until one of their commands was applied.
Then it measures the same conditions over the whole seconds just before that change (its baseline): a check that
already held before the learner acted proves nothing about the action (an overloaded machine fails calls by
itself), so it does not pass, and says so.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sandbox.mesh.config.schema import parse_duration
from sandbox.mesh.runtime.commands import CommandError, parse_command
from sandbox.mesh.runtime.events import (
    CommandApplied,
    ConfigNacked,
    EdgeSnapshot,
    Event,
    ProcessExited,
    ServiceSnapshot,
    Snapshot,
)

MAX_WINDOW_SECONDS = 120
MAX_CONDITIONS = 6
MIN_SCALED_WINDOW = 2.0

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
OPERATOR_WORDS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "="}


class CheckError(ValueError):
    """A check that cannot be used; `field` says where ("when[1]", "for") and the message why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class Metric:
    label: str
    unit: str  # rate | ms | count | ratio | seconds
    scopes: frozenset[str]  # entry | edge | service
    qualifier: str = ""  # "flag", "reason": what the [..] part names; "" = none allowed
    qualifier_required: bool = False


METRICS: dict[str, Metric] = {
    "effective_success": Metric("effective success", "rate", frozenset({"entry", "edge"})),
    "actual_success": Metric("actual success", "rate", frozenset({"edge", "service"})),
    "rps": Metric("requests per second", "count", frozenset({"entry", "edge", "service"})),
    "p50_ms": Metric("p50 latency", "ms", frozenset({"entry", "edge"})),
    "p95_ms": Metric("p95 latency", "ms", frozenset({"entry", "edge"})),
    "p99_ms": Metric("p99 latency", "ms", frozenset({"entry", "edge"})),
    "retries": Metric("retries", "count", frozenset({"edge"})),
    "retry_ratio": Metric("retries per request", "ratio", frozenset({"edge"})),
    "budget_exhausted": Metric("retries refused by the budget", "count", frozenset({"edge"})),
    "overflow": Metric("requests refused by the circuit breaker (UO)", "count", frozenset({"edge"})),
    "flag": Metric("responses flagged", "count", frozenset({"edge"}), "flag", True),
    "tls_failures": Metric("TLS handshake failures", "count", frozenset({"edge"}), "reason"),
    "status": Metric("answers among the recent requests", "count", frozenset({"edge"}), "status", True),
    "ejected": Metric("endpoints ejected", "count", frozenset({"edge"})),
    "circuit_open": Metric("seconds with the circuit open", "seconds", frozenset({"edge"})),
    "mtls": Metric("share of seconds over mTLS", "rate", frozenset({"edge"})),
    "strict": Metric("share of seconds in STRICT mTLS mode", "rate", frozenset({"service"})),
    "nacks": Metric("config versions rejected (NACK)", "count", frozenset({"service"})),
    "exits": Metric("process exits", "count", frozenset({"service"})),
}

_CONDITION = re.compile(
    r"^\s*(?P<metric>[a-z0-9_]+)(?:\[(?P<qualifier>[^\]]{1,60})\])?\s+at\s+(?P<scope>[a-z0-9-]+(?:->[a-z0-9-]+)?)"
    r"\s*(?P<op>>=|<=|==|>|<)\s*(?:(?P<base>baseline)\s*(?:(?P<sign>[+-])\s*)?)?"
    r"(?P<value>\d+(?:\.\d+)?)?\s*(?P<unit>%|ms|s)?\s*$"
)
# Compared with the baseline (the same metric over the seconds before the learner's change): averages only, since
# a count summed over a window says nothing next to one summed over a baseline of another length.
RELATIVE_UNITS = {"rate", "ms", "ratio"}


@dataclass(frozen=True)
class Condition:
    metric: str
    scope: str  # entry | edge | service
    source: str  # edge source ("" unless an edge)
    target: str  # the service, or the edge's destination ("" for entry)
    op: str
    threshold: float  # rates as fractions, latencies in ms; relative: the signed offset from the baseline
    qualifier: str = ""
    text: str = ""
    relative: bool = False  # `<op> baseline [+|- amount]`: against the same metric before the learner's change

    @property
    def where(self) -> str:
        if self.scope == "entry":
            return "at the entry"
        if self.scope == "edge":
            return f"on {self.source} → {self.target}"
        return f"at {self.target}"

    @property
    def label(self) -> str:
        metric = METRICS[self.metric]
        name = f"{self.qualifier} {metric.label}" if self.metric in ("flag", "status") else metric.label
        if self.metric == "tls_failures" and self.qualifier:
            name = f"{metric.label} ({self.qualifier})"
        return f"{name} {self.where}"


@dataclass(frozen=True)
class CheckSpec:
    name: str
    says: str
    conditions: tuple[Condition, ...]
    for_seconds: float
    after: int | None = None  # the step (1-based, as the page numbers them) whose buttons this check waits for


@dataclass(frozen=True)
class Reading:
    condition: Condition
    value: float | None  # None: nothing to measure yet (no traffic on that edge)
    holds: bool
    base: float | None = None  # a relative condition's baseline (None: nothing was measured before the change)

    @property
    def text(self) -> str:
        """ "effective success at the entry 91% — needs ≥ 97%" (or "... 99% ✓")."""
        condition = self.condition
        shown = "no traffic yet" if self.value is None else format_value(condition.metric, self.value)
        if self.holds:
            return f"{condition.label}: {shown} ✓"
        if condition.relative and self.base is None:
            return (
                f"{condition.label}: {shown} — it is compared with the seconds before your change, and none were "
                "measured: start the lab again and wait a few seconds before pressing the button"
            )
        needed = threshold_of(condition, self.base)
        threshold = format_value(condition.metric, needed)
        if shown == threshold:  # 96.95% is not 97%: never show a failing value rounded onto its threshold
            shown = format_value(condition.metric, self.value, precise=True)
        said = f"{condition.label}: {shown} — needs {OPERATOR_WORDS[condition.op]} {threshold}"
        if condition.relative:
            offset = condition.threshold
            change = (
                "" if offset == 0 else f" {'+' if offset > 0 else '−'} {format_value(condition.metric, abs(offset))}"
            )
            said += f" (the {format_value(condition.metric, self.base)} before your change{change})"
        return said


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    readings: tuple[Reading, ...]
    covered_seconds: float  # how much of the window has data after `since`
    for_seconds: float
    at: float  # the time of the newest snapshot looked at (experiment seconds); 0 with none
    waiting_for: tuple[str, ...] | None = None  # the labels of the buttons it waits for, while none was pressed
    before_change: tuple[str, ...] | None = None  # what already held before the learner's change (cannot pass)

    @property
    def why_not(self) -> list[str]:
        """Every reason this check is not passing, in numbers; empty when it passes."""
        if self.passed:
            return []
        if self.waiting_for is not None:
            return [
                waiting_text(self.waiting_for),
                # against the mesh as it is; a condition against the baseline has nothing to compare with yet
                *(r.text for r in self.readings if r.value is not None and not r.holds and not r.condition.relative),
            ]
        if self.before_change is not None:
            measured = f" Before you pressed the button: {'; '.join(self.before_change)}." if self.before_change else ""
            return [
                "The mesh was already doing this before your change, so your change did not cause it: the machine "
                f"running the mesh is probably overloaded.{measured} Start the lab again in a minute or two to try "
                "once more."
            ]
        if self.covered_seconds == 0:
            return ["waiting for the mesh's first whole second since the last change"]
        reasons = [reading.text for reading in self.readings if not reading.holds]
        if self.covered_seconds < self.for_seconds:
            reasons.append(f"watched {self.covered_seconds:g} s of the {self.for_seconds:g} s this check needs")
        return reasons

    def observed(self) -> dict[str, str]:
        """{what was measured: its value in words}, kept when the check latches, to show beside the prediction."""
        return {
            reading.condition.label: "no traffic"
            if reading.value is None
            else format_value(reading.condition.metric, reading.value)
            for reading in self.readings
        }


# --------------------------------------------------------------------------- declaring


def window_seconds(value: object, field: str) -> float:
    """A check's window: a duration in the engine's one spelling (`10s`, `500ms`, a number of seconds)."""
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise CheckError(field, f"a duration like 10s or 500ms, got {value!r}") from None
    if not 1 <= seconds <= MAX_WINDOW_SECONDS:
        raise CheckError(field, f"must be from 1 s to {MAX_WINDOW_SECONDS} s, got {seconds:g} s")
    return seconds


def parse_condition(
    text: object, *, field: str, services: set[str] | None, edges: set[tuple[str, str]] | None
) -> Condition:
    """One condition, checked against the lab's topology (its services and its caller -> callee edges);
    None skips that check (reading back a stored check that was validated when it was loaded)."""
    if not isinstance(text, str):
        raise CheckError(field, "must be a condition like 'effective_success at entry >= 99%'")
    match = _CONDITION.match(text)
    if not match:
        raise CheckError(field, f"{text!r} is not '<metric> at <entry|service|a->b> <op> <threshold>'")
    name, qualifier, scope_text = match["metric"], match["qualifier"] or "", match["scope"]
    metric = METRICS.get(name)
    if metric is None:
        raise CheckError(field, f"unknown metric {name!r} (one of {', '.join(METRICS)})")
    if "->" in scope_text:
        source, target = scope_text.split("->")
        scope = "edge"
        if edges is not None and (source, target) not in edges:
            known = ", ".join(f"{a}->{b}" for a, b in sorted(edges))
            raise CheckError(field, f"edge {scope_text!r} is not in the topology (edges: {known})")
    elif scope_text == "entry":
        scope, source, target = "entry", "", ""
    else:
        scope, source, target = "service", "", scope_text
        if services is not None and target not in services:
            raise CheckError(
                field, f"service {target!r} is not in the topology (services: {', '.join(sorted(services))})"
            )
    if scope not in metric.scopes:
        raise CheckError(field, f"{name} is measured {' or '.join(sorted(metric.scopes))}, not {scope}")
    if qualifier and not metric.qualifier:
        raise CheckError(field, f"{name} takes no [..] qualifier")
    if metric.qualifier_required and not qualifier:
        example = "403" if metric.qualifier == "status" else "UT"
        raise CheckError(field, f"{name} needs a {metric.qualifier} in brackets, like {name}[{example}]")
    if metric.qualifier == "status" and not re.fullmatch(r"[1-5]\d\d", qualifier):
        raise CheckError(field, f"{name}[..] takes an HTTP status like 403, got {qualifier!r}")
    relative, sign, unit = bool(match["base"]), match["sign"], match["unit"]
    if relative:
        if metric.unit not in RELATIVE_UNITS and name != "rps":
            raise CheckError(field, f"{name} is summed over the window: compare it with a number, not with baseline")
        if bool(sign) != bool(match["value"]):
            raise CheckError(field, f"write 'baseline', or 'baseline - 20%' with a sign and an amount (got {text!r})")
    elif match["value"] is None:
        raise CheckError(field, f"{text!r} is not '<metric> at <entry|service|a->b> <op> <threshold>'")
    value = float(match["value"] or 0)
    if metric.unit == "rate":
        if unit == "%":
            value /= 100
        elif unit is not None or value > 1:
            raise CheckError(field, f"{name} is a rate: write a percentage like 99% (got {match['value']}{unit or ''})")
        if not 0 <= value <= 1:
            raise CheckError(field, f"{name} must be from 0% to 100%")
    elif metric.unit == "ms":
        if unit == "%":
            raise CheckError(field, f"{name} is a latency: write 250ms or 1.5s, not a percentage")
        value = value * 1000 if unit == "s" else value
    elif unit is not None:
        raise CheckError(field, f"{name} is a plain number: write it without a unit (got {unit})")
    value = -value if sign == "-" else value
    return Condition(name, scope, source, target, match["op"], value, qualifier, text.strip(), relative)


def parse_check(raw: object, *, field: str, services: set[str] | None, edges: set[tuple[str, str]] | None) -> CheckSpec:
    if not isinstance(raw, dict):
        raise CheckError(field, "must be a mapping with name, says, for and when")
    unknown = sorted(set(raw) - {"name", "says", "for", "when", "after"})
    if unknown:
        raise CheckError(field, f"unknown key(s): {', '.join(map(str, unknown))}")
    missing = sorted({"name", "says", "for", "when"} - set(raw))
    if missing:
        raise CheckError(field, f"missing key(s): {', '.join(missing)}")
    name, says = raw["name"], raw["says"]
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", name):
        raise CheckError(f"{field}.name", "must be lowercase letters, digits and hyphens")
    if not isinstance(says, str) or not says.strip():
        raise CheckError(f"{field}.says", "must be a sentence saying what the check shows")
    when = raw["when"]
    if not isinstance(when, list) or not 1 <= len(when) <= MAX_CONDITIONS:
        raise CheckError(f"{field}.when", f"must be a list of 1 to {MAX_CONDITIONS} conditions")
    conditions = tuple(
        parse_condition(item, field=f"{field}.when[{index}]", services=services, edges=edges)
        for index, item in enumerate(when)
    )
    after = raw.get("after")
    if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 1):
        raise CheckError(f"{field}.after", f"must be the number of a step with buttons (1 is the first), got {after!r}")
    return CheckSpec(name, says.strip(), conditions, window_seconds(raw["for"], f"{field}.for"), after)


def check_to_json(check: CheckSpec) -> dict:
    """The spelling stored in the database; `check_from_json` reads it back without a topology."""
    data = {
        "name": check.name,
        "says": check.says,
        "for": check.for_seconds,
        "when": [condition.text for condition in check.conditions],
    }
    if check.after is not None:
        data["after"] = check.after
    return data


def check_from_json(data: dict) -> CheckSpec:
    return parse_check(data, field=f"checks[{data.get('name', '?')}]", services=None, edges=None)


def scaled_window(seconds: float, scale: float) -> float:
    """A window shortened for the test suite (`scale` < 1): whole seconds, never under MIN_SCALED_WINDOW (one
    second of telemetry is too few requests to tell an effect from noise) and never longer than written."""
    if scale >= 1:
        return seconds
    return min(seconds, max(MIN_SCALED_WINDOW, math.ceil(seconds * scale - 1e-9)))


# --------------------------------------------------------------------------- evaluating


def format_value(metric: str, value: float, *, precise: bool = False) -> str:
    unit = METRICS[metric].unit
    if unit == "rate":
        percent = value * 100
        if precise:
            return f"{percent:.2f}%"
        return f"{percent:.0f}%" if percent in (0, 100) or abs(percent - round(percent)) < 0.05 else f"{percent:.1f}%"
    if unit == "ms":
        if precise:
            return f"{value:.2f} ms"
        return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
    if unit == "ratio":
        return f"{value:.3f}" if precise else f"{value:.2f}"
    if unit == "seconds":
        return f"{value:g} s"
    return f"{value:.1f}" if metric == "rps" else f"{value:g}"


def _edge(snapshot: Snapshot, condition: Condition) -> EdgeSnapshot | None:
    return next(
        (edge for edge in snapshot.edges if edge.source == condition.source and edge.destination == condition.target),
        None,
    )


def _service(snapshot: Snapshot, condition: Condition) -> ServiceSnapshot | None:
    return next((service for service in snapshot.services if service.name == condition.target), None)


def _weighted(pairs: Iterable[tuple[float | None, float]]) -> float | None:
    total = weight = 0.0
    for value, w in pairs:
        if value is not None and w > 0:
            total += value * w
            weight += w
    return total / weight if weight else None


def _every_second(condition: Condition, values: list[float]) -> float | None:
    """A latency must hold in every second of the window: the worst second for an upper bound (<=, <), the
    best one for a lower bound (>=, >)."""
    if not values:
        return None
    return min(values) if condition.op in (">=", ">") else max(values)


def measure(condition: Condition, snapshots: list[Snapshot], others: list[Event], *, interval: float) -> float | None:
    """The condition's metric over the window's snapshots (and the other events in it)."""
    metric = condition.metric
    if metric == "nacks":
        return float(sum(isinstance(e, ConfigNacked) and e.service == condition.target for e in others))
    if metric == "exits":
        return float(sum(isinstance(e, ProcessExited) and e.service == condition.target for e in others))
    if condition.scope == "entry":
        if metric == "effective_success":
            return _weighted((s.effective_success, s.requests) for s in snapshots)
        if metric == "rps":
            return sum(s.requests for s in snapshots) / (len(snapshots) * interval) if snapshots else None
        return _every_second(condition, [getattr(s, metric) for s in snapshots if s.requests])
    if condition.scope == "service":
        services = [found for s in snapshots if (found := _service(s, condition)) is not None]
        if metric == "actual_success":
            return _weighted((x.actual_success, x.rps) for x in services)
        if metric == "strict":
            return sum(x.mtls_mode == "STRICT" for x in services) / len(services) if services else None
        return sum(x.rps for x in services) / len(services) if services else None  # rps
    edges = [found for s in snapshots if (found := _edge(s, condition)) is not None]
    if not edges:
        return None
    if metric in ("effective_success", "actual_success"):
        return _weighted((getattr(x, metric), x.rps) for x in edges)
    if metric == "rps":
        return sum(x.rps for x in edges) / len(edges)
    if metric in ("p50_ms", "p95_ms", "p99_ms"):
        return _every_second(condition, [getattr(x, metric) for x in edges if x.rps > 0])
    if metric == "retries":
        return float(sum(x.retries for x in edges))
    if metric == "retry_ratio":
        requests = sum(x.rps for x in edges) * interval
        return sum(x.retries for x in edges) / requests if requests else None
    if metric == "budget_exhausted":
        return float(sum(x.retry_budget_exhausted for x in edges))
    if metric == "overflow":
        return float(sum(x.pending_overflow for x in edges))
    if metric == "flag":
        return float(sum(x.flags.get(condition.qualifier, 0) for x in edges))
    if metric == "status":
        # the snapshots' recent requests are a sample (capped per interval): good for "it happened", not rates
        wanted = int(condition.qualifier)
        return float(
            sum(
                record.status == wanted and record.source == condition.source and record.destination == condition.target
                for s in snapshots
                for record in s.recent
            )
        )
    if metric == "tls_failures":
        if condition.qualifier:
            return float(sum(x.tls_failures.get(condition.qualifier, 0) for x in edges))
        return float(sum(sum(x.tls_failures.values()) for x in edges))
    if metric == "ejected":
        return float(max(len(x.ejected) for x in edges))
    if metric == "mtls":
        busy = [x for x in edges if x.rps > 0]
        return sum(x.mtls for x in busy) / len(busy) if busy else None
    if metric == "circuit_open":
        return sum(x.circuit == "open" for x in edges) * interval
    raise AssertionError(f"unmeasured metric {metric}")  # METRICS and this function list the same names


def threshold_of(condition: Condition, base: float | None) -> float:
    """The number a condition compares with: its threshold, or for a relative one the baseline moved by it."""
    if not condition.relative:
        return condition.threshold
    return (base if base is not None else math.nan) + condition.threshold


def _reading(condition: Condition, value: float | None, base: float | None) -> Reading:
    needed = threshold_of(condition, base)
    holds = value is not None and not math.isnan(needed) and OPERATORS[condition.op](round(value, 9), round(needed, 9))
    return Reading(condition, value, holds, base)


def evaluate(
    check: CheckSpec,
    events: Iterable[Event],
    *,
    since: float = -math.inf,
    interval: float = 1.0,
    baseline: dict[str, float | None] | None = None,
) -> CheckResult:
    """Does `check` hold over its window, counting only events after `since` (experiment seconds)? `baseline`
    holds each relative condition's value before the learner's change (by its text)."""
    events = list(events)
    # The mesh as the learner last changed it: nothing from before the newest applied command counts.
    changed = [event.t for event in events if isinstance(event, CommandApplied)]
    since = max([since, *changed])
    after = [event for event in events if event.t > since]
    # a snapshot at t covers (t - interval, t]: only whole intervals after `since` count
    snapshots = sorted(
        (e for e in after if isinstance(e, Snapshot) and e.t - interval >= since - 1e-6), key=lambda e: e.t
    )
    if not snapshots:
        readings = tuple(Reading(c, None, False) for c in check.conditions)
        return CheckResult(False, readings, 0.0, check.for_seconds, 0.0)
    newest = snapshots[-1].t
    start = newest - check.for_seconds + interval / 2
    window = [s for s in snapshots if s.t >= start]
    # Discrete events (a NACK, a process exit) happen once: they count from the newest change on, not per window.
    others = [e for e in after if not isinstance(e, Snapshot)]
    readings = []
    for condition in check.conditions:
        value = measure(condition, window, others, interval=interval)
        readings.append(_reading(condition, value, (baseline or {}).get(condition.text)))
    covered = min(len(window) * interval, check.for_seconds)
    passed = covered >= check.for_seconds and all(reading.holds for reading in readings)
    return CheckResult(passed, tuple(readings), covered, check.for_seconds, newest)


# --------------------------------------------------------------------------- causality


@dataclass(frozen=True)
class Trigger:
    """The buttons a check waits for: its step (0-based; None when the lab gives it none) and their commands."""

    step: int | None
    buttons: tuple[tuple[str, dict], ...]  # (label, command)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.buttons)


def check_triggers(steps: list[dict], checks: list[CheckSpec]) -> list[Trigger]:
    """Which step's buttons each check waits for: the step `after` names, else the next step with buttons after
    the previous check's step. A check left without one gets a Trigger with no buttons (`trigger_problems`)."""
    triggers, previous = [], -1
    for check in checks:
        if check.after is not None:
            index = check.after - 1
        else:
            index = next((i for i in range(previous + 1, len(steps)) if _buttons(steps[i])), None)
        if index is None or not 0 <= index < len(steps) or index < previous or not _buttons(steps[index]):
            triggers.append(Trigger(None, ()))
            continue
        triggers.append(Trigger(index, tuple((b["label"], b["command"]) for b in _buttons(steps[index]))))
        previous = index
    return triggers


def trigger_problems(steps: list[dict], checks: list[CheckSpec]) -> list[str]:
    """ "checks[1]: ..." for every check that has no step with buttons to wait for (the loader refuses them)."""
    problems = []
    for index, (check, trigger) in enumerate(zip(checks, check_triggers(steps, checks))):
        if trigger.step is None:
            if check.after is not None:
                why = f"after: step {check.after} is not a step with buttons at or after the previous check's step"
            else:
                why = "no step with buttons is left for it (each check waits for the buttons of its own step)"
            problems.append(f"checks[{index}]: {why}")
    return problems


def _buttons(step: object) -> list[dict]:
    return list(step.get("actions") or []) if isinstance(step, dict) else []


def waiting_text(labels: tuple[str, ...]) -> str:
    if not labels:
        return "This check has no button to wait for, so it cannot start. Please tell the course's authors."
    pressed = " or ".join(f"“{label}”" for label in labels)
    return f"Waiting for your change: press {pressed}. This check counts only what the mesh does after it."


def _same_command(applied: dict, button: dict) -> bool:
    """The engine echoes a command in its own spelling (defaults filled in): compare what they mean."""
    try:
        return parse_command(applied, None) == parse_command(button, None)
    except CommandError:
        return False


def _first_applied(events: list[Event], trigger: Trigger, *, after: float, same_step: bool) -> float | None:
    for event in events:
        if not isinstance(event, CommandApplied):
            continue
        if event.t < after or (event.t == after and not same_step):
            continue
        if any(_same_command(event.command, command) for _, command in trigger.buttons):
            return event.t
    return None


def baseline(check: CheckSpec, events: list[Event], *, acted: float, started: float, interval: float = 1.0) -> dict:
    """The check's conditions over the whole seconds just before the learner's change at `acted` (at most one
    window, after the lab started and after the change before it): {"seconds", "held", "readings"}."""
    changed = [e.t for e in events if isinstance(e, CommandApplied) and e.t < acted]
    since = max([started, *changed])
    snapshots = sorted(
        (e for e in events if isinstance(e, Snapshot) and e.t - interval >= since - 1e-6 and e.t <= acted + 1e-6),
        key=lambda e: e.t,
    )
    if snapshots:
        start = snapshots[-1].t - check.for_seconds + interval / 2
        snapshots = [s for s in snapshots if s.t >= start]
    others = [e for e in events if not isinstance(e, Snapshot) and since < e.t <= acted]
    values = {c.text: measure(c, snapshots, others, interval=interval) if snapshots else None for c in check.conditions}
    # over the baseline a relative condition meets itself: it holds only when no change is asked (`>= baseline`)
    readings = [_reading(c, values[c.text], values[c.text]) for c in check.conditions]
    held = bool(snapshots) and all(reading.holds for reading in readings)
    return {
        "seconds": len(snapshots) * interval,
        "values": values,
        "held": held,
        "readings": [
            f"{r.condition.label}: {format_value(r.condition.metric, r.value)}" for r in readings if r.value is not None
        ],
    }


@dataclass
class Progress:
    """Where a lab's ordered checks stand: passed ones latch with when and what was measured; `acted` latches
    when each check's action was applied and what its baseline said."""

    passed: dict[str, dict] = field(default_factory=dict)  # name -> {"at": t, "observed": {...}}
    acted: dict[str, dict] = field(default_factory=dict)  # name -> {"at": t, "seconds", "values", "held", "readings"}

    def to_json(self) -> dict:
        return {"passed": self.passed, "acted": self.acted}

    @classmethod
    def from_json(cls, data: dict | None) -> Progress:
        data = data or {}
        return cls(passed=dict(data.get("passed", {})), acted=dict(data.get("acted", {})))


def progress_update(
    checks: list[CheckSpec],
    progress: Progress,
    events: list[Event],
    *,
    triggers: list[Trigger],
    started: float = -math.inf,
    interval: float = 1.0,
) -> tuple[Progress, CheckResult | None]:
    """Latch every check that now passes, in order; returns the new progress and the current check's result
    (None when all passed). `started` is the experiment time the lab began (earlier events do not count).
    A check counts only after one of its trigger's commands was applied (after the previous check's), and never
    passes when it already held over the seconds before that change."""
    passed, acted = dict(progress.passed), dict(progress.acted)
    since = started  # the previous check's latch
    previous_action, previous_step = started, None
    for check, trigger in zip(checks, triggers, strict=True):
        record = acted.get(check.name)
        if record is None and check.name not in passed:
            same_step = trigger.step is not None and trigger.step == previous_step
            at = _first_applied(events, trigger, after=previous_action, same_step=same_step)
            if at is None:
                # the numbers go on showing (what the check asks, against the mesh as it is), but nothing counts
                result = evaluate(check, events, since=since, interval=interval)
                return Progress(passed, acted), dataclasses.replace(result, passed=False, waiting_for=trigger.labels)
            record = {"at": at, **baseline(check, events, acted=at, started=started, interval=interval)}
            acted[check.name] = record
        if record is not None:
            previous_action, previous_step = record["at"], trigger.step
        if check.name in passed:
            since = max(since, passed[check.name]["at"])
            continue
        if record["held"]:
            readings = tuple(Reading(c, None, False) for c in check.conditions)
            result = CheckResult(False, readings, 0.0, check.for_seconds, 0.0, before_change=tuple(record["readings"]))
            return Progress(passed, acted), result
        result = evaluate(
            check, events, since=max(since, record["at"]), interval=interval, baseline=record.get("values", {})
        )
        if not result.passed:
            return Progress(passed, acted), result
        passed[check.name] = {"at": result.at, "observed": result.observed()}
        since = result.at
    return Progress(passed, acted), None
