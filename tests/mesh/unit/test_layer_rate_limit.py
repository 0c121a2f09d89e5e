"""Local rate limit: a token bucket driven by the time it is given (no sleeping), and the layer that answers
the excess 429 RL at once without calling the service."""

from __future__ import annotations

import pytest
from mesh_fakes import FakeClock, ScriptedUpstream, request, run

from sandbox.mesh.config.model import RateLimitPolicy
from sandbox.mesh.dataplane.layers.rate_limit import TokenBucket, rate_limit_layer


@pytest.mark.parametrize(
    "rate, burst, times, expected",
    [
        # A full bucket lets the burst through at once, then refuses.
        (10, 5, [0.0] * 7, [True] * 5 + [False] * 2),
        # Refilled at the rate: 0.25 s at 4/s is one more token (times exact in binary: no rounding).
        (4, 5, [0.0] * 5 + [0.125, 0.25, 0.25], [True] * 5 + [False, True, False]),
        # A long pause refills no more than the burst.
        (10, 2, [0.0, 0.0, 100.0, 100.0, 100.0], [True, True, True, True, False]),
        # A steady 5/s under a 10/s limit is never refused, even with a burst of 1.
        (10, 1, [i * 0.2 for i in range(20)], [True] * 20),
        # 32/s against 8/s: after the burst one in four passes.
        (8, 1, [i / 32 for i in range(8)], [True, False, False, False, True, False, False, False]),
        # A fractional rate: one request every 2 s.
        (0.5, 1, [0.0, 1.0, 2.0, 2.5, 4.0], [True, False, True, False, True]),
        # A clock that steps back adds nothing and takes nothing away.
        (4, 1, [5.0, 4.0, 5.125, 5.25], [True, False, False, True]),
    ],
)
def test_the_bucket_takes_a_token_per_request_and_refills_at_the_rate(rate, burst, times, expected):
    bucket = TokenBucket(rate, burst)
    assert [bucket.take(t) for t in times] == expected


def layer_with(policy):
    clock = FakeClock()
    upstream = ScriptedUpstream(200)
    return rate_limit_layer(upstream, policy, clock=clock), upstream, clock


def test_over_the_limit_the_sidecar_answers_429_rl_at_once_without_calling_the_service():
    handler, upstream, clock = layer_with(RateLimitPolicy(requests_per_second=10, burst=3))

    async def burst():
        return [await handler(request()) for _ in range(5)]

    responses = run(burst())
    assert [r.status for r in responses] == [200, 200, 200, 429, 429]
    refused = responses[-1]
    assert refused.flags == {"RL"}
    assert refused.body == b"local_rate_limited"
    assert "10 requests per second (burst 3)" in refused.detail
    assert len(upstream.calls) == 3
    clock.advance(0.5)
    assert run(handler(request())).status == 200  # refilled: more are let in


def test_without_a_limit_the_layer_is_not_there():
    upstream = ScriptedUpstream(200)
    assert rate_limit_layer(upstream, RateLimitPolicy(), clock=FakeClock()) is upstream
