"""Retry layer: budget (20% + 10/s), jittered backoff bounds, retry_on conditions and URX."""

from __future__ import annotations

import random

import pytest
from mesh_fakes import FakeClock, FakeSleep, ScriptedUpstream, request, run

from sandbox.mesh.config.model import Response, RetryPolicy, UpstreamError
from sandbox.mesh.dataplane.layers.retry import RetryBudget, backoff_delay, retry_condition, retry_layer
from sandbox.mesh.dataplane.layers.upstream import upstream_errors_as_responses


def make_retrying(upstream, *, attempts=3, retry_on=None, budget=None, clock=None):
    clock = clock or FakeClock()
    sleep = FakeSleep(clock)
    policy = RetryPolicy(attempts=attempts, **({"retry_on": frozenset(retry_on)} if retry_on else {}))
    budget = budget or RetryBudget(clock=clock)
    handler = retry_layer(
        upstream_errors_as_responses(upstream), policy, budget=budget, sleep=sleep, rng=random.Random(7)
    )
    return handler, sleep


# --------------------------------------------------------------------------- budget


def test_budget_allows_twenty_percent_of_requests_plus_ten_per_second_over_its_window():
    clock = FakeClock()
    budget = RetryBudget(clock=clock, ratio=0.2, min_per_second=10.0, ttl=1.0)
    for _ in range(100):
        budget.deposit()
    granted = 0
    while budget.try_withdraw():
        granted += 1
    assert granted == 30  # 0.2 x 100 requests + 10/s x 1 s


def test_budget_with_the_default_ten_second_window_keeps_a_reserve_of_one_hundred():
    clock = FakeClock()
    budget = RetryBudget(clock=clock)  # Linkerd's defaults: 20%, 10/s, ttl 10 s
    for _ in range(50):
        budget.deposit()
    granted = 0
    while budget.try_withdraw():
        granted += 1
    assert granted == 110  # 0.2 x 50 + 10/s x 10 s


def test_spent_budget_recovers_once_the_window_has_passed():
    clock = FakeClock()
    budget = RetryBudget(clock=clock, ttl=1.0)
    while budget.try_withdraw():
        pass
    assert not budget.try_withdraw()
    clock.advance(0.5)
    assert not budget.try_withdraw()  # the withdrawals are still inside the window
    clock.advance(0.6)
    assert budget.try_withdraw()


def test_under_sustained_load_retries_stay_near_twenty_percent_plus_ten_per_second():
    clock = FakeClock()
    budget = RetryBudget(clock=clock, ttl=10.0)
    granted = 0
    seconds, rate = 60, 200
    for _ in range(seconds * rate):
        clock.advance(1.0 / rate)
        budget.deposit()
        if budget.try_withdraw():  # every request fails and wants a retry
            granted += 1
    expected = seconds * (0.2 * rate + 10) + 100  # + the initial 10 s reserve
    assert expected * 0.95 <= granted <= expected * 1.05


# --------------------------------------------------------------------------- backoff


@pytest.mark.parametrize("retry_number,ceiling", [(1, 0.025), (2, 0.075), (3, 0.175), (4, 0.250), (8, 0.250)])
def test_backoff_is_fully_jittered_below_an_exponential_ceiling_capped_at_the_maximum(retry_number, ceiling):
    rng = random.Random(retry_number)
    delays = [backoff_delay(retry_number, base=0.025, cap=0.250, rng=rng) for _ in range(2000)]
    assert all(0 <= d < ceiling for d in delays)
    assert max(delays) > ceiling * 0.95  # it reaches up to the ceiling ...
    assert min(delays) < ceiling * 0.05  # ... and down to zero: full jitter
    assert len(set(delays)) > 1900


def test_retry_layer_sleeps_a_backoff_before_each_retry_and_never_before_the_first_try():
    upstream = ScriptedUpstream(503, 503, 503, 200)
    handler, sleep = make_retrying(upstream)
    response = run(handler(request()))
    assert response.status == 200
    assert len(sleep.calls) == 3
    assert [d < c for d, c in zip(sleep.calls, (0.025, 0.075, 0.175))] == [True, True, True]


# --------------------------------------------------------------------------- conditions


def test_a_503_is_retried_and_the_request_carries_its_attempt_number():
    upstream = ScriptedUpstream(503, 200)
    handler, _ = make_retrying(upstream)
    req = request()
    response = run(handler(req))
    assert response.status == 200
    assert [attempt for attempt, _ in upstream.calls] == [1, 2]
    assert req.attempt == 2


def test_when_every_retry_fails_the_last_answer_carries_urx():
    upstream = ScriptedUpstream(503)
    handler, _ = make_retrying(upstream, attempts=3)
    response = run(handler(request()))
    assert response.status == 503
    assert "URX" in response.flags
    assert len(upstream.calls) == 4  # one try + three retries
    assert "3 retries exhausted" in response.detail


def test_a_success_or_a_client_error_is_not_retried():
    for status in (200, 404):
        upstream = ScriptedUpstream(status)
        handler, _ = make_retrying(upstream)
        assert run(handler(request())).status == status
        assert len(upstream.calls) == 1


def test_connect_failure_is_retried_only_when_listed():
    refused = UpstreamError("UF", "connection refused", "connect-failure")
    upstream = ScriptedUpstream(refused, 200)
    handler, _ = make_retrying(upstream, retry_on={"connect-failure"})
    assert run(handler(request())).status == 200

    upstream = ScriptedUpstream(refused, 200)
    handler, _ = make_retrying(upstream, retry_on={"reset"})
    response = run(handler(request()))
    assert (response.status, response.flags, len(upstream.calls)) == (503, {"UF"}, 1)
    assert response.detail == "connection refused"


def test_reset_is_retried_under_reset_but_a_plain_503_is_not():
    upstream = ScriptedUpstream(UpstreamError("UC", "connection reset by peer", "reset"), 200)
    handler, _ = make_retrying(upstream, retry_on={"reset"})
    assert run(handler(request())).status == 200

    upstream = ScriptedUpstream(503, 200)
    handler, _ = make_retrying(upstream, retry_on={"reset", "connect-failure"})
    assert run(handler(request())).status == 503
    assert len(upstream.calls) == 1


def test_gateway_error_covers_502_503_504_but_not_500():
    should_retry = retry_condition(frozenset({"gateway-error"}))
    assert [should_retry(Response(s)) for s in (500, 502, 503, 504)] == [False, True, True, True]
    assert retry_condition(frozenset({"5xx"}))(Response(500))


def test_answers_made_by_the_proxy_itself_are_not_retried():
    should_retry = retry_condition(frozenset({"5xx", "gateway-error"}))
    for flag in ("UO", "UH", "NR", "FI"):
        assert not should_retry(Response(503, flags={flag}))
    assert should_retry(Response(504, flags={"UT"}))  # a per-try timeout is worth another try


def test_unknown_retry_condition_is_refused():
    with pytest.raises(ValueError, match="bogus"):
        retry_condition(frozenset({"5xx", "bogus"}))


def test_when_the_budget_is_spent_the_failure_is_returned_without_urx():
    clock = FakeClock()
    budget = RetryBudget(clock=clock, ratio=0.0, min_per_second=1.0, ttl=1.0)  # one retry in all
    upstream = ScriptedUpstream(503)
    handler, _ = make_retrying(upstream, budget=budget, clock=clock)
    first = run(handler(request()))
    assert len(upstream.calls) == 2 and "URX" not in first.flags
    assert "retry budget exhausted" in first.detail
    second = run(handler(request()))
    assert len(upstream.calls) == 3  # no retry left for the second request
    assert second.status == 503 and "URX" not in second.flags


def test_no_retry_layer_when_attempts_is_zero():
    async def inner(req):
        return Response(503)

    same = retry_layer(
        inner,
        RetryPolicy(attempts=0),
        budget=RetryBudget(clock=FakeClock()),
        sleep=FakeSleep(FakeClock()),
        rng=random.Random(),
    )
    assert same is inner


def test_windowed_counter_counts_what_happened_within_its_window():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from sandbox.mesh.dataplane.layers.retry import WindowedCounter

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=60))
    def check(gaps):
        clock = FakeClock(0.0)
        counter = WindowedCounter(window=10.0, slices=10, clock=clock)
        times = []
        for gap in gaps:
            clock.advance(gap)
            counter.add()
            times.append(clock.now)
            now = clock.now
            # Bucketed: everything from the last 9 s is counted, nothing older than 10 s is.
            assert sum(1 for t in times if now - t < 9.0) <= counter.total()
            assert counter.total() <= sum(1 for t in times if now - t < 10.0 + 1e-9)

    check()
