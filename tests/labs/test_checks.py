"""Lab checks over tables of synthetic snapshots: parsing, aggregation, latching, and why not passing yet."""

import pytest

from labs.checks import (
    CheckError,
    Progress,
    Trigger,
    check_from_json,
    check_to_json,
    check_triggers,
    evaluate,
    parse_check,
    parse_condition,
    progress_update,
    scaled_window,
    trigger_problems,
)
from sandbox.mesh.runtime.events import (
    CommandApplied,
    ConfigNacked,
    EdgeSnapshot,
    RequestRecord,
    ServiceSnapshot,
    Snapshot,
)

SERVICES = {"a", "b"}
EDGES = {("loadgen", "a"), ("a", "b")}


def snap(
    t,
    *,
    effective=1.0,
    actual_b=1.0,
    retries=0,
    rps=20.0,
    p99=5.0,
    flags=None,
    tls=None,
    ejected=(),
    circuit="closed",
    overflow=0,
    edge_effective=None,
    statuses=(),
):
    return Snapshot(
        recent=[
            RequestRecord(id=f"{t}-{i}", source="a", destination="b", method="GET", path="/", status=status)
            for i, status in enumerate(statuses)
        ],
        t=t,
        rate=rps,
        effective_success=effective,
        p50_ms=2.0,
        p95_ms=p99 / 2,
        p99_ms=p99,
        requests=int(rps),
        services=[
            ServiceSnapshot("a", 1, rps, 1.0, "STRICT"),
            ServiceSnapshot("b", 1, rps + retries, actual_b, "STRICT"),
        ],
        edges=[
            EdgeSnapshot("loadgen", "a", rps, effective, effective, 2.0, p99 / 2, p99),
            EdgeSnapshot(
                "a",
                "b",
                rps,
                edge_effective if edge_effective is not None else effective,
                actual_b,
                2.0,
                p99 / 2,
                p99,
                retries=retries,
                flags=flags or {},
                tls_failures=tls or {},
                ejected=list(ejected),
                circuit=circuit,
                pending_overflow=overflow,
            ),
        ],
    )


def check(*when, seconds="5s", name="c"):
    return parse_check(
        {"name": name, "says": "it happened", "for": seconds, "when": list(when)},
        field="checks[0]",
        services=SERVICES,
        edges=EDGES,
    )


SHIELDED = ("effective_success at entry >= 97%", "actual_success at b <= 60%", "retries at a->b > 0")


@pytest.mark.parametrize(
    "snapshots, passes",
    [
        ([snap(t) for t in range(1, 11)], False),  # healthy mesh: nothing to see
        ([snap(t, actual_b=0.5) for t in range(1, 11)], False),  # b fails but no retries: the caller sees it
        ([snap(t, effective=0.5, actual_b=0.5) for t in range(1, 11)], False),
        ([snap(t, effective=0.99, actual_b=0.5, retries=12) for t in range(1, 11)], True),
        ([snap(t, effective=0.99, actual_b=0.5, retries=12) for t in range(1, 4)], False),  # only 3 of 5 s
        # four good seconds and one bad one: the window's weighted rate decides (0.99*4 + 0.8) / 5 = 95.2%
        (
            [snap(t, effective=0.99, actual_b=0.5, retries=12) for t in range(1, 5)]
            + [snap(5, effective=0.8, actual_b=0.5, retries=12)],
            False,
        ),
    ],
)
def test_retries_hide_failures_table(snapshots, passes):
    assert evaluate(check(*SHIELDED), snapshots).passed is passes


def test_why_not_passing_is_said_in_numbers():
    result = evaluate(check(*SHIELDED), [snap(t, effective=0.91, actual_b=0.5, retries=3) for t in range(1, 11)])
    assert result.why_not == ["effective success at the entry: 91% — needs ≥ 97%"]
    result = evaluate(check(*SHIELDED), [snap(1, effective=0.99, actual_b=0.7)])
    assert result.why_not == [
        "actual success at b: 70% — needs ≤ 60%",
        "retries on a → b: 0 — needs > 0",
        "watched 1 s of the 5 s this check needs",
    ]


def test_no_traffic_is_not_a_pass():
    idle = [Snapshot(t=t, effective_success=None, requests=0) for t in range(1, 8)]
    result = evaluate(check("effective_success at entry <= 60%"), idle)
    assert not result.passed and result.why_not[0].endswith("no traffic yet — needs ≤ 60%")


@pytest.mark.parametrize(
    "condition, snapshots, passes",
    [
        ("p99_ms at entry <= 1100ms", [snap(t, p99=900) for t in range(1, 6)], True),
        (
            "p99_ms at entry <= 1.1s",
            [snap(t, p99=900) for t in range(1, 5)] + [snap(5, p99=2500)],
            False,
        ),  # worst second
        ("p99_ms at entry >= 150ms", [snap(t, p99=5) for t in range(1, 5)] + [snap(5, p99=400)], False),  # every second
        ("p99_ms at entry >= 150ms", [snap(t, p99=400) for t in range(1, 6)], True),
        ("flag[UT] at a->b > 0", [snap(t, flags={"UT": 3}) for t in range(1, 6)], True),
        ("flag[UT] at a->b > 0", [snap(t, flags={"URX": 3}) for t in range(1, 6)], False),
        (
            "tls_failures[certificate expired] at a->b >= 5",
            [snap(t, tls={"certificate expired": 2}) for t in range(1, 6)],
            True,
        ),
        (
            "tls_failures[certificate expired] at a->b >= 5",
            [snap(t, tls={"unknown ca": 2}) for t in range(1, 6)],
            False,
        ),
        ("tls_failures at a->b >= 5", [snap(t, tls={"unknown ca": 2}) for t in range(1, 6)], True),
        ("ejected at a->b >= 1", [snap(t, ejected=["b-0"] if t == 3 else []) for t in range(1, 6)], True),
        ("circuit_open at a->b >= 2", [snap(t, circuit="open" if t > 3 else "closed") for t in range(1, 6)], True),
        ("overflow at a->b > 10", [snap(t, overflow=3) for t in range(1, 6)], True),
        ("retry_ratio at a->b > 1.5", [snap(t, retries=40, rps=20) for t in range(1, 6)], True),
        ("retry_ratio at a->b <= 1.2", [snap(t, retries=40, rps=20) for t in range(1, 6)], False),
        ("rps at b >= 20", [snap(t) for t in range(1, 6)], True),
        ("status[403] at a->b > 0", [snap(t, statuses=[200, 200]) for t in range(1, 6)], False),
        ("status[403] at a->b > 0", [snap(t, statuses=[403] if t == 4 else [200]) for t in range(1, 6)], True),
        ("mtls at a->b >= 100%", [snap(t) for t in range(1, 6)], False),  # the synthetic edge is plaintext
        ("mtls at a->b <= 0%", [snap(t) for t in range(1, 6)], True),
        ("strict at b >= 100%", [snap(t) for t in range(1, 6)], True),
    ],
)
def test_metric_table(condition, snapshots, passes):
    assert evaluate(check(condition), snapshots).passed is passes


def test_nacks_count_config_nacked_events_in_the_window():
    c = check("nacks at b >= 1", "effective_success at entry >= 99%")
    healthy = [snap(t) for t in range(1, 7)]
    assert not evaluate(c, healthy).passed
    assert evaluate(c, healthy + [ConfigNacked(t=4.5, service="b", version=3, serving_version=2, reason="bad")]).passed


KILL = {"action": "kill", "service": "b", "target": "sidecar"}
RESTART = {"action": "restart", "service": "b", "target": "sidecar"}
FAIL = {"action": "fail", "service": "b", "percent": 50, "status": 503}
KILL_STEP = Trigger(0, (("Kill b's sidecar", KILL),))
RESTART_STEP = Trigger(1, (("Restart b's sidecar", RESTART),))
FAIL_STEP = Trigger(0, (("b fails 50% with 503", FAIL),))


def pressed(t, command):
    """The engine applied a button's command at t (echoed in its own spelling, defaults filled in)."""
    return CommandApplied(t=t, command={**command, "replica": None} if command is FAIL else command, said="done")


def test_checks_latch_in_order_and_each_looks_only_after_the_one_before():
    broken = check("flag[UF] at a->b > 0", seconds="2s", name="broken")
    recovered = check("effective_success at entry >= 99%", seconds="3s", name="recovered")
    triggers = [KILL_STEP, RESTART_STEP]
    healthy_first = [snap(t) for t in range(1, 6)]
    progress, current = progress_update([broken, recovered], Progress(), healthy_first, triggers=triggers)
    assert progress.passed == {} and current.why_not == [
        "Waiting for your change: press “Kill b's sidecar”. This check counts only what the mesh does after it.",
        "UF responses flagged on a → b: 0 — needs > 0",  # the numbers go on showing
    ]
    # the learner kills the sidecar at 5.5 s: failures for three seconds
    events = healthy_first + [pressed(5.5, KILL)] + [snap(t, effective=0.2, flags={"UF": 15}) for t in (6, 7, 8)]
    progress, current = progress_update([broken, recovered], progress, events, triggers=triggers)
    assert list(progress.passed) == ["broken"] and progress.passed["broken"]["at"] == 8  # latched when evaluated
    # recovery waits for the learner's restart, however healthy the mesh looks
    assert current.why_not[0].startswith("Waiting for your change: press “Restart b's sidecar”")
    events += [pressed(8.5, RESTART)] + [snap(t) for t in (9, 10, 11, 12)]
    progress, current = progress_update([broken, recovered], progress, events, triggers=triggers)
    assert list(progress.passed) == ["broken", "recovered"] and current is None
    # latched: later failures do not un-pass it
    again, _ = progress_update([broken, recovered], progress, events + [snap(13, effective=0.0)], triggers=triggers)
    assert again.passed == progress.passed


def test_events_before_the_lab_started_do_not_count():
    c = check("flag[UT] at a->b > 0", seconds="2s")
    events = [pressed(0.5, FAIL)] + [snap(t, flags={"UT": 1}) for t in (1, 2)] + [snap(t) for t in (3, 4)]
    assert progress_update([c], Progress(), events, triggers=[FAIL_STEP], started=2.5)[0].passed == {}


# --------------------------------------------------------------------------- causality

FAILS = ("effective_success at entry <= 70%", "actual_success at b <= 70%")
HEALTHY = [snap(t) for t in range(1, 7)]
OVERLOADED = [snap(t, effective=0.6, actual_b=0.6) for t in range(1, 7)]  # failing before anyone pressed anything
FAILING_AFTER = [snap(t, effective=0.5, actual_b=0.5) for t in range(7, 14)]


@pytest.mark.parametrize(
    "events, passes, says",
    [
        # healthy, then the learner's change, then the effect: caused by the action
        (HEALTHY + [pressed(6.5, FAIL)] + FAILING_AFTER, True, None),
        # the same effect with no button pressed (the machine fails calls by itself): never a pass
        (HEALTHY + FAILING_AFTER, False, "Waiting for your change: press “b fails 50% with 503”"),
        (OVERLOADED + FAILING_AFTER, False, "Waiting for your change"),
        # another command than the step's button does not start the check
        (HEALTHY + [pressed(6.5, RESTART)] + FAILING_AFTER, False, "Waiting for your change"),
        # already failing over the seconds before the change: the change did not cause it
        (
            OVERLOADED + [pressed(6.5, FAIL)] + FAILING_AFTER,
            False,
            "The mesh was already doing this before your change, so your change did not cause it",
        ),
        # one condition already held (b's success) but not the whole check: the change made the difference
        (
            [snap(t, effective=0.9, actual_b=0.6) for t in range(1, 7)] + [pressed(6.5, FAIL)] + FAILING_AFTER,
            True,
            None,
        ),
        # only whole seconds after the change count (the one it fell in is left out)
        (HEALTHY + [pressed(6.5, FAIL)] + FAILING_AFTER[:2], False, "watched 1 s of the 5 s this check needs"),
    ],
)
def test_a_check_passes_only_when_the_learners_change_caused_it(events, passes, says):
    progress, current = progress_update([check(*FAILS)], Progress(), events, triggers=[FAIL_STEP], started=0.5)
    assert ("c" in progress.passed) is passes
    if says:
        assert current.why_not[0].startswith(says) or says in " ".join(current.why_not), current.why_not


def test_failing_before_the_change_is_said_plainly_with_what_was_measured():
    events = OVERLOADED + [pressed(6.5, FAIL)] + FAILING_AFTER
    progress, current = progress_update([check(*FAILS)], Progress(), events, triggers=[FAIL_STEP], started=0.5)
    (reason,) = current.why_not
    assert "the machine running the mesh is probably overloaded" in reason
    assert "Before you pressed the button: effective success at the entry: 60%; actual success at b: 60%." in reason
    assert "Start the lab again" in reason
    # decided once, from the seconds before the change: more failing seconds after it never make it pass
    later = events + [snap(t, effective=0.5, actual_b=0.5) for t in range(14, 30)]
    progress, current = progress_update([check(*FAILS)], progress, later, triggers=[FAIL_STEP], started=0.5)
    assert progress.passed == {} and current.before_change is not None
    # kept in the stored progress: the baseline does not depend on the events still being in the recent stream
    stored = Progress.from_json(progress.to_json())
    assert progress_update([check(*FAILS)], stored, FAILING_AFTER, triggers=[FAIL_STEP])[0].passed == {}


def test_a_change_pressed_at_once_has_no_baseline_and_is_judged_on_what_follows():
    events = [pressed(0.7, FAIL)] + [snap(t, effective=0.5, actual_b=0.5) for t in range(1, 7)]
    progress, _ = progress_update([check(*FAILS)], Progress(), events, triggers=[FAIL_STEP], started=0.5)
    assert progress.acted["c"]["seconds"] == 0 and "c" in progress.passed


def test_the_next_check_waits_for_a_change_after_the_previous_ones():
    broken = check("flag[UF] at a->b > 0", seconds="2s", name="broken")
    recovered = check("effective_success at entry >= 99%", seconds="2s", name="recovered")
    # a restart pressed before the kill is not the recovery's cause
    events = [pressed(1.5, RESTART)] + [snap(t) for t in (2, 3)] + [pressed(3.5, KILL)]
    events += [snap(t, effective=0.0, flags={"UF": 9}) for t in (4, 5, 6)]
    progress, _ = progress_update([broken, recovered], Progress(), events, triggers=[KILL_STEP, RESTART_STEP])
    events += [snap(t) for t in (7, 8, 9)]
    progress, current = progress_update([broken, recovered], progress, events, triggers=[KILL_STEP, RESTART_STEP])
    assert list(progress.passed) == ["broken"] and current.waiting_for == ("Restart b's sidecar",)


def test_each_check_waits_for_the_next_step_with_buttons_or_the_one_it_names():
    steps = [
        {"text": "Watch.", "actions": []},
        {"text": "Break.", "actions": [{"label": "Kill", "command": KILL}]},
        {"text": "Watch it fail.", "actions": []},
        {"text": "Fix.", "actions": [{"label": "Restart", "command": RESTART}]},
    ]
    first, second = check("retries at a->b > 0", name="one"), check("retries at a->b > 0", name="two")
    assert [t.step for t in check_triggers(steps, [first, second])] == [1, 3]
    named = parse_check(
        {"name": "two", "says": "s", "for": "2s", "when": ["retries at a->b > 0"], "after": 2},
        field="checks[1]",
        services=SERVICES,
        edges=EDGES,
    )
    assert [t.labels for t in check_triggers(steps, [first, named])] == [("Kill",), ("Kill",)]  # both after one step
    assert check_from_json(check_to_json(named)).after == 2
    assert trigger_problems(steps, [first, second]) == []
    third = check("retries at a->b > 0", name="three")
    assert trigger_problems(steps, [first, second, third]) == [
        "checks[2]: no step with buttons is left for it (each check waits for the buttons of its own step)"
    ]
    watch = parse_check(
        {"name": "w", "says": "s", "for": "2s", "when": ["retries at a->b > 0"], "after": 1},
        field="checks[0]",
        services=SERVICES,
        edges=EDGES,
    )
    assert trigger_problems(steps, [watch]) == [
        "checks[0]: after: step 1 is not a step with buttons at or after the previous check's step"
    ]


def test_two_checks_after_one_step_share_its_change():
    steps = [{"text": "Break.", "actions": [{"label": "Kill", "command": KILL}]}]
    failing = check("flag[UF] at a->b > 0", seconds="2s", name="failing")
    still = parse_check(
        {"name": "still", "says": "s", "for": "2s", "when": ["effective_success at entry <= 10%"], "after": 1},
        field="checks[1]",
        services=SERVICES,
        edges=EDGES,
    )
    events = [snap(t) for t in (1, 2, 3)] + [pressed(3.5, KILL)]
    triggers = check_triggers(steps, [failing, still])
    progress = Progress()
    for t in range(4, 10):  # evaluated every second, as the lab page does
        events.append(snap(t, effective=0.0, flags={"UF": 9}))
        progress, current = progress_update([failing, still], progress, events, triggers=triggers)
    assert list(progress.passed) == ["failing", "still"] and current is None


@pytest.mark.parametrize("written, scale, runs", [(10, 0.4, 4), (5, 0.4, 2), (3, 0.4, 2), (2, 0.4, 2), (5, 1, 5)])
def test_test_windows_are_whole_seconds_of_at_least_two(written, scale, runs):
    assert scaled_window(written, scale) == runs


@pytest.mark.parametrize(
    "condition, field_problem",
    [
        ("effective_success at a->c >= 99%", "edge 'a->c' is not in the topology"),
        ("effective_success at zz >= 99%", "not entry or edge"),  # placeholder replaced below
        ("speed at entry >= 1", "unknown metric 'speed'"),
        ("effective_success at entry >= 99", "is a rate: write a percentage"),
        ("effective_success at entry >= 120%", "must be from 0% to 100%"),
        ("p99_ms at entry <= 50%", "is a latency"),
        ("retries at a->b > 3ms", "is a plain number"),
        ("flag at a->b > 0", "needs a flag in brackets"),
        ("status[40x] at a->b > 0", "takes an HTTP status like 403"),
        ("retries[UT] at a->b > 0", "takes no [..] qualifier"),
        ("actual_success at entry >= 10%", "is measured edge or service, not entry"),
        ("effective success >= 99%", "is not '<metric> at"),
        (42, "must be a condition like"),
    ],
)
def test_bad_conditions_name_the_field_and_the_reason(condition, field_problem):
    if field_problem == "not entry or edge":
        field_problem = "service 'zz' is not in the topology"
    with pytest.raises(CheckError) as caught:
        parse_condition(condition, field="checks[0].when[1]", services=SERVICES, edges=EDGES)
    assert caught.value.field == "checks[0].when[1]"
    assert field_problem in caught.value.reason


@pytest.mark.parametrize(
    "raw, where",
    [
        ({"name": "x", "says": "s", "for": "0s", "when": ["retries at a->b > 0"]}, "checks[0].for"),
        ({"name": "x", "says": "s", "for": "500s", "when": ["retries at a->b > 0"]}, "checks[0].for"),
        ({"name": "x", "says": "s", "for": "5s", "when": []}, "checks[0].when"),
        ({"name": "X Y", "says": "s", "for": "5s", "when": ["retries at a->b > 0"]}, "checks[0].name"),
        ({"name": "x", "says": "s", "for": "5s"}, "checks[0]"),
        ({"name": "x", "says": "s", "for": "5s", "when": ["retries at a->b > 0"], "extra": 1}, "checks[0]"),
    ],
)
def test_bad_checks_name_the_field(raw, where):
    with pytest.raises(CheckError) as caught:
        parse_check(raw, field="checks[0]", services=SERVICES, edges=EDGES)
    assert caught.value.field == where


def test_stored_spelling_reads_back_the_same_check():
    original = check(*SHIELDED)
    assert check_from_json(check_to_json(original)) == original


def test_the_window_starts_after_the_newest_applied_command():
    c = check("effective_success at entry >= 97%", "retries at a->b > 0", seconds="3s")
    shielded = [snap(t, effective=0.99, actual_b=0.7, retries=5) for t in range(1, 6)]
    pushed = CommandApplied(t=5.4, command={"action": "policy"}, said="new traffic policy")
    assert evaluate(c, shielded).passed
    # the mesh changed at 5.4 s: what it did before says nothing about it now
    result = evaluate(c, shielded + [pushed, snap(6, effective=0.99, retries=5)])
    assert not result.passed and result.why_not == ["waiting for the mesh's first whole second since the last change"]
    result = evaluate(c, shielded + [pushed] + [snap(t, effective=0.99, retries=5) for t in (6, 7)])
    assert not result.passed and result.why_not == ["watched 1 s of the 3 s this check needs"]
    later = [snap(t, effective=0.99, retries=5) for t in (6, 7, 8, 9)]
    assert evaluate(c, shielded + [pushed] + later).passed


def test_a_failing_value_is_never_shown_rounded_onto_its_threshold():
    result = evaluate(check("effective_success at entry >= 97%"), [snap(t, effective=0.9695) for t in range(1, 6)])
    assert result.why_not == ["effective success at the entry: 96.95% — needs ≥ 97%"]


def test_a_nack_counts_from_the_change_that_caused_it_not_per_window():
    c = check("nacks at b >= 1", "effective_success at entry >= 99%", seconds="3s")
    pushed = CommandApplied(t=5.0, command={"action": "policy"}, said="pushed unchecked")
    nack = ConfigNacked(t=6.0, service="b", version=3, serving_version=2, reason="bad")
    events = [pushed, nack] + [snap(t) for t in range(6, 12)]
    result = evaluate(c, events)
    assert result.passed and result.readings[0].value == 1


# --------------------------------------------------------------------------- compared with the baseline

DROPS = ("effective_success at entry <= baseline - 20%",)


@pytest.mark.parametrize(
    "before, after, passes",
    [
        (HEALTHY, FAILING_AFTER, True),  # 100% before, 50% after: the change took 50 points off
        (OVERLOADED, FAILING_AFTER, False),  # 60% before, 50% after: not the 20 points the check asks for
        (OVERLOADED, [snap(t, effective=0.3, actual_b=0.3) for t in range(7, 14)], True),  # 60% -> 30%: it did
    ],
)
def test_a_relative_condition_compares_with_the_seconds_before_the_change(before, after, passes):
    events = before + [pressed(6.5, FAIL)] + after
    progress, _ = progress_update([check(*DROPS)], Progress(), events, triggers=[FAIL_STEP], started=0.5)
    assert ("c" in progress.passed) is passes


def test_a_relative_condition_says_what_it_was_compared_with():
    events = OVERLOADED + [pressed(6.5, FAIL)] + FAILING_AFTER
    _, current = progress_update([check(*DROPS)], Progress(), events, triggers=[FAIL_STEP], started=0.5)
    assert current.why_not == ["effective success at the entry: 50% — needs ≤ 40% (the 60% before your change − 20%)"]
    # pressed at once: nothing to compare with, and the learner is told what to do
    events = [pressed(0.7, FAIL)] + FAILING_AFTER
    _, current = progress_update([check(*DROPS)], Progress(), events, triggers=[FAIL_STEP], started=0.5)
    assert current.why_not[0].endswith("start the lab again and wait a few seconds before pressing the button")


def test_a_latency_can_be_asked_to_rise_above_its_baseline():
    c = check("p99_ms at entry >= baseline + 100ms", seconds="3s")
    events = [snap(t, p99=30) for t in range(1, 5)] + [pressed(4.5, FAIL)] + [snap(t, p99=90) for t in range(5, 10)]
    assert progress_update([c], Progress(), events, triggers=[FAIL_STEP], started=0.5)[0].passed == {}
    events = [snap(t, p99=30) for t in range(1, 5)] + [pressed(4.5, FAIL)] + [snap(t, p99=400) for t in range(5, 10)]
    assert "c" in progress_update([c], Progress(), events, triggers=[FAIL_STEP], started=0.5)[0].passed


@pytest.mark.parametrize(
    "condition, problem",
    [
        (
            "retries at a->b > baseline",
            "retries is summed over the window: compare it with a number, not with baseline",
        ),
        ("effective_success at entry <= baseline 20%", "with a sign and an amount"),
        ("effective_success at entry <= baseline -", "with a sign and an amount"),
        ("p99_ms at entry >= baseline + 5%", "is a latency"),
    ],
)
def test_bad_relative_conditions_say_why(condition, problem):
    with pytest.raises(CheckError) as caught:
        parse_condition(condition, field="checks[0].when[0]", services=SERVICES, edges=EDGES)
    assert problem in caught.value.reason


def test_a_relative_condition_reads_back_the_same():
    original = check("effective_success at a->b <= baseline - 20%", "p50_ms at a->b >= baseline + 0.1s")
    assert check_from_json(check_to_json(original)) == original
    assert [c.threshold for c in original.conditions] == [pytest.approx(-0.2), 100.0]


def test_before_the_change_a_relative_condition_is_not_judged():
    c = check("effective_success at entry <= baseline - 20%", "actual_success at b <= 70%")
    _, current = progress_update([c], Progress(), HEALTHY, triggers=[FAIL_STEP], started=0.5)
    assert current.why_not == [
        "Waiting for your change: press “b fails 50% with 503”. This check counts only what the mesh does after it.",
        "actual success at b: 100% — needs ≤ 70%",
    ]
