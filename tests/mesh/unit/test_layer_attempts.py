"""Each try of a request reaches its access-log record: status, flags, the endpoint chosen, the backoff."""

from __future__ import annotations

import random

from mesh_fakes import FakeClock, FakeSleep, ScriptedUpstream, endpoints, request, run

from sandbox.mesh.config.model import Response, RetryPolicy, TrafficPolicy, UpstreamError
from sandbox.mesh.dataplane.stack import outbound_stack
from sandbox.mesh.dataplane.telemetry import SidecarTelemetry


def stack(policy, upstream):
    clock = FakeClock()
    telemetry = SidecarTelemetry("a")
    handler = outbound_stack(
        policy=policy,
        endpoints=lambda: endpoints(count=3),
        send=upstream,
        clock=clock,
        sleep=FakeSleep(clock),
        rng=random.Random(1),
        telemetry=telemetry,
        destination="b",
    )
    return handler, telemetry


def test_a_request_retried_twice_lists_three_tries_with_their_endpoints_and_backoffs():
    upstream = ScriptedUpstream(
        Response(503), UpstreamError("UF", "connection refused", "connect-failure"), Response(200)
    )
    handler, telemetry = stack(TrafficPolicy(retry=RetryPolicy(attempts=3)), upstream)

    response = run(handler(request()))

    record = telemetry.access_log()[-1]
    assert response.status == 200 and record.attempts == 3
    assert [(t["status"], t["flags"]) for t in record.tries] == [(503, []), (503, ["UF"]), (200, [])]
    assert record.tries[0]["backoff_ms"] == 0.0
    assert all(t["backoff_ms"] > 0 for t in record.tries[1:])  # the jittered backoff before each retry
    assert [t["endpoint"] for t in record.tries] == [f"{e.host}:{e.port}" for _, e in upstream.calls]
    assert all(a["endpoint"] != b["endpoint"] for a, b in zip(record.tries, record.tries[1:]))  # a retry moves on
    assert record.as_dict()["tries"] == record.tries


def test_a_request_without_retries_has_one_try():
    handler, telemetry = stack(TrafficPolicy(), ScriptedUpstream(Response(200)))
    run(handler(request()))
    assert [t["status"] for t in telemetry.access_log()[-1].tries] == [200]
