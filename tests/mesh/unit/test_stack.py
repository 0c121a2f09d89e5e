"""The composed stacks: retries vs a flaky upstream, budget under load, state across a policy
push, and what reaches the access log and metrics."""

from __future__ import annotations

import asyncio
import random

from mesh_fakes import FakeClock, FakeSleep, ScriptedUpstream, endpoints, request, run, run_virtual
from prometheus_client.parser import text_string_to_metric_families

from sandbox.mesh.config.model import (
    AuthorizationPolicy,
    AuthorizationRule,
    CircuitBreakerPolicy,
    FaultPolicy,
    OutlierDetectionPolicy,
    Response,
    RetryPolicy,
    TimeoutPolicy,
    TrafficPolicy,
    UpstreamError,
)
from sandbox.mesh.dataplane.stack import DestinationState, inbound_stack, no_route_stack, outbound_stack
from sandbox.mesh.dataplane.telemetry import SidecarTelemetry


class FlakyUpstream:
    """Answers 503 to a fraction of requests at random (seeded), 200 otherwise; keeps score."""

    def __init__(self, failure_rate: float, seed: int, failing_ports: set[int] | None = None) -> None:
        self.rng = random.Random(seed)
        self.failure_rate = failure_rate
        self.failing_ports = failing_ports
        self.calls = 0
        self.successes = 0

    async def __call__(self, req):
        self.calls += 1
        if self.failing_ports is not None:
            failed = req.endpoint.port in self.failing_ports
        else:
            failed = self.rng.random() < self.failure_rate
        if failed:
            return Response(503, body=b"error")
        self.successes += 1
        return Response(200, body=b"ok")


def build(policy, send, *, clock=None, telemetry=None, state=None, eps=None, seed=1):
    clock = clock or FakeClock()
    telemetry = telemetry or SidecarTelemetry("a")
    eps = eps if eps is not None else endpoints(count=3)
    handler = outbound_stack(
        policy=policy,
        endpoints=lambda: eps,
        send=send,
        clock=clock,
        sleep=FakeSleep(clock),
        rng=random.Random(seed),
        telemetry=telemetry,
        destination="b",
        state=state,
    )
    return handler, clock, telemetry


def drive(handler, clock, count, rate):
    async def all_requests():
        statuses = []
        for _ in range(count):
            clock.advance(1.0 / rate)
            statuses.append((await handler(request())).status)
        return statuses

    return run(all_requests())


def test_three_retries_turn_30_percent_transient_503_into_over_99_percent_success():
    upstream = FlakyUpstream(0.30, seed=42)
    handler, clock, telemetry = build(TrafficPolicy(retry=RetryPolicy(attempts=3)), upstream)
    statuses = drive(handler, clock, count=20_000, rate=20)  # 20 requests/s: within the budget
    effective = statuses.count(200) / len(statuses)
    actual = upstream.successes / upstream.calls
    assert effective > 0.99
    assert 0.68 < actual < 0.72
    assert telemetry.destinations["b"].retry_stats.budget_exhausted == 0


def test_under_heavy_load_the_budget_caps_retries_so_some_failures_get_through():
    upstream = FlakyUpstream(0.30, seed=43)
    handler, clock, telemetry = build(TrafficPolicy(retry=RetryPolicy(attempts=3)), upstream)
    count, rate = 12_000, 200  # a minute at 200 requests/s (plus the backoff sleeps, run in sequence)
    start = clock()
    statuses = drive(handler, clock, count=count, rate=rate)
    elapsed = clock() - start
    stats = telemetry.destinations["b"].retry_stats
    allowed = 0.2 * count + 10 * elapsed + 100  # 20% + 10/s over the run + the 10 s reserve
    assert stats.retries <= allowed
    assert stats.retries > 0.9 * allowed  # the budget, not the failures, is the limit here
    assert stats.budget_exhausted > 0
    assert statuses.count(200) / count < 0.99


def test_a_replica_that_always_fails_is_ejected_and_retries_hide_it():
    eps = endpoints(count=3)
    upstream = FlakyUpstream(0.0, seed=1, failing_ports={eps[1].port})
    policy = TrafficPolicy(
        retry=RetryPolicy(attempts=2),
        outlier_detection=OutlierDetectionPolicy(consecutive_5xx=3, base_ejection_time=30, max_ejection_percent=50),
    )
    handler, clock, telemetry = build(policy, upstream, eps=eps)
    statuses = drive(handler, clock, count=300, rate=50)
    assert set(statuses) == {200}
    assert upstream.calls - upstream.successes == 3  # three failures, then it was out
    families = {f.name: f for f in text_string_to_metric_families(telemetry.render_prometheus())}
    assert families["mesh_outlier_ejections"].samples[0].value == 1
    assert families["mesh_outlier_ejected_endpoints"].samples[0].value == 1


def test_a_policy_push_with_the_same_state_keeps_ejections_and_drops_removed_cores():
    eps = endpoints(count=2)
    upstream = FlakyUpstream(0.0, seed=1, failing_ports={eps[0].port})
    state = DestinationState("b")
    clock = FakeClock()
    policy = TrafficPolicy(
        outlier_detection=OutlierDetectionPolicy(consecutive_5xx=1, max_ejection_percent=50),
        circuit_breaker=CircuitBreakerPolicy(max_connections=10),
    )
    handler, _, telemetry = build(policy, upstream, clock=clock, state=state, eps=eps)
    drive(handler, clock, count=4, rate=10)
    detector = state.outliers
    assert detector is not None and detector.ejected_count() == 1

    pushed = TrafficPolicy(
        load_balancer="least_request",
        outlier_detection=OutlierDetectionPolicy(consecutive_5xx=5, max_ejection_percent=50),
    )
    handler, _, _ = build(pushed, upstream, clock=clock, telemetry=telemetry, state=state, eps=eps)
    assert state.outliers is detector and detector.ejected_count() == 1
    assert state.breaker is None and state.balancer_kind == "least_request"
    assert set(drive(handler, clock, count=20, rate=10)) == {200}


def test_an_injected_abort_is_neither_retried_nor_held_against_an_endpoint():
    upstream = ScriptedUpstream(200)
    policy = TrafficPolicy(
        fault=FaultPolicy(abort_percent=100, abort_status=503),
        retry=RetryPolicy(attempts=3),
        outlier_detection=OutlierDetectionPolicy(consecutive_5xx=1),
    )
    handler, clock, telemetry = build(policy, upstream)
    statuses = drive(handler, clock, count=10, rate=10)
    assert statuses == [503] * 10 and upstream.calls == []
    assert telemetry.destinations["b"].retry_stats.retries == 0
    assert telemetry.access_log()[-1].flags == "FI"


def test_a_connect_failure_is_logged_with_uf_and_its_reason():
    refused = UpstreamError("UF", "TLS handshake failed: certificate expired", "connect-failure")
    handler, _, telemetry = build(TrafficPolicy(), ScriptedUpstream(refused))
    response = run(handler(request()))
    assert (response.status, response.flags) == (503, {"UF"})
    entry = telemetry.access_log()[-1]
    assert entry.flags == "UF" and entry.detail == "TLS handshake failed: certificate expired"
    assert entry.upstream == "127.0.0.1:40000"


def test_an_open_breaker_shows_in_the_metrics():
    gate = asyncio.Event()

    async def held(req):
        await gate.wait()
        return Response(200)

    policy = TrafficPolicy(circuit_breaker=CircuitBreakerPolicy(max_connections=1, max_pending_requests=0))

    async def scenario():
        handler, _, telemetry = build(policy, held)
        first = asyncio.create_task(handler(request()))
        await asyncio.sleep(0)
        refused = await handler(request())
        text_open = telemetry.render_prometheus()
        gate.set()
        await first
        return refused, text_open, telemetry.render_prometheus()

    refused, text_open, text_closed = run(scenario())
    assert refused.flags == {"UO"}

    def gauge(text):
        families = {f.name: f for f in text_string_to_metric_families(text)}
        return families["mesh_circuit_breaker_open"].samples[0].value

    assert (gauge(text_open), gauge(text_closed)) == (1, 0)


def test_inbound_denies_by_policy_and_logs_the_caller():
    telemetry = SidecarTelemetry("payments")
    policy = AuthorizationPolicy(allow=(AuthorizationRule(sources=("cart",)),))
    handler = inbound_stack(authorization=policy, forward=ScriptedUpstream(200), telemetry=telemetry)
    frontend = "spiffe://meshlearn.local/ns/default/sa/frontend"
    denied = run(handler(request(path="/pay", destination="", source_identity=frontend)))
    allowed = run(handler(request(path="/pay", destination="", source_identity=frontend.replace("frontend", "cart"))))
    assert (denied.status, denied.body, allowed.status) == (403, b"RBAC: access denied", 200)
    first, second = telemetry.access_log()
    assert (first.direction, first.source, first.destination, first.flags) == (
        "inbound",
        "frontend",
        "payments",
        "RBAC",
    )
    assert (second.source, second.flags) == ("cart", "-")


def test_inbound_turns_a_dead_local_service_into_503_uf():
    telemetry = SidecarTelemetry("b")
    handler = inbound_stack(
        authorization=None, forward=ScriptedUpstream(ConnectionRefusedError(111, "refused")), telemetry=telemetry
    )
    response = run(handler(request()))
    assert (response.status, response.flags) == (503, {"UF"})


def test_an_unknown_destination_is_logged_as_404_nr():
    telemetry = SidecarTelemetry("a")
    response = run(no_route_stack(telemetry=telemetry)(request(destination="nosuch")))
    assert (response.status, response.flags) == (404, {"NR"})
    assert telemetry.access_log()[-1].destination == "nosuch"


def test_totals_summarise_requests_flags_and_destination_state_for_a_live_view():
    eps = endpoints(count=2)
    upstream = FlakyUpstream(0.0, seed=1, failing_ports={eps[0].port})
    policy = TrafficPolicy(
        retry=RetryPolicy(attempts=1),
        outlier_detection=OutlierDetectionPolicy(consecutive_5xx=2, max_ejection_percent=50),
        circuit_breaker=CircuitBreakerPolicy(max_connections=5),
    )
    handler, clock, telemetry = build(policy, upstream, eps=eps)
    empty = telemetry.totals()
    assert empty["requests"] == 0 and empty["destinations"]["b"]["circuit"] == "closed"
    drive(handler, clock, count=10, rate=10)
    telemetry.record_tls_failure("unknown ca")
    totals = telemetry.totals()
    assert totals["requests"] == 10 and totals["by_status"] == {"200": 10}
    assert totals["destinations"]["b"] == {
        "retries": 2,
        "retry_budget_exhausted": 0,
        "ejections": 1,
        "ejected_now": 1,
        "circuit": "closed",
        "lb_healthy_panic": 0,
    }
    assert totals["tls_failures"] == {"unknown ca": 1}


# --------------------------------------------------------------------------- timeouts vs outlier detection


class HangOn:
    """An upstream that never answers (within 60 s) on `ports`, and answers 200 elsewhere."""

    def __init__(self, ports):
        self.ports = set(ports)

    async def __call__(self, req):
        if req.endpoint.port in self.ports:
            await asyncio.sleep(60)
        return Response(200)


def virtual_stack(policy, upstream, eps):
    """Build the stack inside a virtual-time loop (timeouts fire without waiting) and run `drive`."""
    telemetry = SidecarTelemetry("a")
    state = DestinationState("b")

    def make(loop):
        return outbound_stack(
            policy=policy,
            endpoints=lambda: eps,
            send=upstream,
            clock=loop.time,
            sleep=asyncio.sleep,
            rng=random.Random(3),
            telemetry=telemetry,
            destination="b",
            state=state,
        )

    return make, telemetry, state


DETECT_ON_2 = OutlierDetectionPolicy(consecutive_5xx=2, base_ejection_time=30, max_ejection_percent=100)


def test_an_overall_timeout_does_not_eject_a_healthy_endpoint():
    eps = endpoints(count=3)
    policy = TrafficPolicy(timeout=TimeoutPolicy(request_timeout=0.1), outlier_detection=DETECT_ON_2)
    make, telemetry, state = virtual_stack(policy, HangOn(p.port for p in eps), eps)

    async def scenario():
        handler = make(asyncio.get_running_loop())
        return [(await handler(request())).status for _ in range(9)]

    assert run_virtual(scenario) == [504] * 9
    assert state.outliers.ejections_total == 0
    families = {f.name: f for f in text_string_to_metric_families(telemetry.render_prometheus())}
    assert families["mesh_outlier_ejections"].samples[0].value == 0


def test_a_caller_that_hangs_up_does_not_eject_the_endpoint():
    eps = endpoints(count=3)
    policy = TrafficPolicy(outlier_detection=DETECT_ON_2)
    make, telemetry, state = virtual_stack(policy, HangOn(p.port for p in eps), eps)

    async def scenario():
        handler = make(asyncio.get_running_loop())
        for _ in range(9):
            task = asyncio.create_task(handler(request()))
            await asyncio.sleep(0.5)  # the caller gives up and closes its connection
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run_virtual(scenario)
    assert [entry.flags for entry in telemetry.access_log()] == ["DC"] * 9  # not UH once all were ejected
    assert state.outliers.ejections_total == 0


def test_a_per_try_timeout_counts_against_the_endpoint_that_hung():
    eps = endpoints(count=3)
    policy = TrafficPolicy(retry=RetryPolicy(attempts=1, per_try_timeout=0.1), outlier_detection=DETECT_ON_2)
    make, telemetry, state = virtual_stack(policy, HangOn({eps[0].port}), eps)

    async def scenario():
        handler = make(asyncio.get_running_loop())
        return [(await handler(request())).status for _ in range(9)]

    assert run_virtual(scenario) == [200] * 9  # the retry went to another endpoint each time
    assert state.outliers.is_ejected(eps[0]) and state.outliers.ejections_total == 1
    assert state.outliers.events[-1].endpoint == f"127.0.0.1:{eps[0].port}"


def test_with_one_replica_a_burst_of_5xx_does_not_turn_into_100_percent_uh():
    eps = endpoints(count=1)
    burst = [503] * 5
    upstream = ScriptedUpstream(*burst, 200)  # five failures, then healthy again
    policy = TrafficPolicy(
        outlier_detection=OutlierDetectionPolicy(consecutive_5xx=5, base_ejection_time=30, max_ejection_percent=100)
    )
    handler, clock, telemetry = build(policy, upstream, eps=eps)
    statuses = drive(handler, clock, count=50, rate=10)  # 5 s, well inside the 30 s ejection
    assert statuses == burst + [200] * 45
    assert "UH" not in telemetry.totals()["by_flag"]
    families = {f.name: f for f in text_string_to_metric_families(telemetry.render_prometheus())}
    assert families["mesh_outlier_ejected_endpoints"].samples[0].value == 1  # still ejected ...
    assert families["mesh_lb_healthy_panic"].samples[0].value == 45  # ... so served in panic mode
    assert telemetry.totals()["destinations"]["b"]["lb_healthy_panic"] == 45


def test_a_destination_removed_from_config_answers_like_one_never_known():
    def gone():
        raise LookupError("b")

    telemetry = SidecarTelemetry("a")
    removed = outbound_stack(
        policy=TrafficPolicy(),
        endpoints=gone,
        send=ScriptedUpstream(200),
        clock=FakeClock(),
        sleep=FakeSleep(FakeClock()),
        rng=random.Random(1),
        telemetry=telemetry,
        destination="b",
    )
    never = no_route_stack(telemetry=telemetry)
    first, second = run(removed(request(destination="b"))), run(never(request(destination="b")))
    assert (first.status, first.body, first.flags, first.detail) == (
        second.status,
        second.body,
        second.flags,
        second.detail,
    )
    assert (first.status, first.flags, first.detail) == (404, {"NR"}, "no route to b")


def test_the_per_try_timeout_starts_once_the_try_holds_a_connection_slot():
    # As Envoy's per-try timer starts when the pool is ready: queueing behind the breaker is
    # bounded by the overall timeout, not cut short and blamed on the endpoint.
    eps = endpoints(count=1)

    async def answers_in_80_ms(req):
        await asyncio.sleep(0.08)
        return Response(200)

    policy = TrafficPolicy(
        retry=RetryPolicy(attempts=1, per_try_timeout=0.1),
        circuit_breaker=CircuitBreakerPolicy(max_connections=1, max_pending_requests=5),
        outlier_detection=DETECT_ON_2,
    )
    make, telemetry, state = virtual_stack(policy, answers_in_80_ms, eps)

    async def scenario():
        handler = make(asyncio.get_running_loop())
        return [r.status for r in await asyncio.gather(*(handler(request()) for _ in range(4)))]

    assert run_virtual(scenario) == [200] * 4  # the last one waited 0.24 s for its slot
    assert state.outliers.ejections_total == 0
