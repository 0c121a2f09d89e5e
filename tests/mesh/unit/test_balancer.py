"""Load balancer: round robin and least request over endpoints not ejected; panic threshold; UH, NR."""

from __future__ import annotations

import random
from collections import Counter

from mesh_fakes import FakeClock, ScriptedUpstream, endpoints, request, run

from sandbox.mesh.config.model import OutlierDetectionPolicy
from sandbox.mesh.dataplane.layers.balancer import (
    BalancerStats,
    LeastRequest,
    RoundRobin,
    balancer_layer,
    make_balancer,
)
from sandbox.mesh.dataplane.layers.outlier import OutlierDetector


def ports(chosen):
    return [e.port for e in chosen]


def test_round_robin_takes_each_endpoint_in_turn():
    eps = endpoints(count=3)
    rr = RoundRobin()
    assert ports(rr.choose(eps) for _ in range(6)) == [40000, 40001, 40002] * 2


def test_round_robin_skips_an_ejected_endpoint():
    clock = FakeClock()
    eps = endpoints(count=3)
    detector = OutlierDetector(OutlierDetectionPolicy(consecutive_5xx=1, max_ejection_percent=50), clock=clock)
    detector.record_failure(eps[1], 3)
    upstream = ScriptedUpstream(200)
    handler = balancer_layer(upstream, balancer=RoundRobin(), endpoints=lambda: eps, available=detector.available)
    for _ in range(4):
        run(handler(request()))
    assert ports(e for _, e in upstream.calls) == [40000, 40002, 40000, 40002]


def test_least_request_never_picks_the_busiest_of_three():
    eps = endpoints(count=3)
    lr = LeastRequest(random.Random(5))
    for _ in range(5):
        lr.started(eps[2])
    lr.started(eps[0])
    picks = Counter(lr.choose(eps).port for _ in range(3000))
    assert picks[40002] == 0
    assert picks[40001] > picks[40000] > 0  # the idle one wins whenever it is drawn


def test_least_request_spreads_evenly_when_loads_are_equal_and_forgets_finished_requests():
    eps = endpoints(count=2)
    lr = LeastRequest(random.Random(9))
    lr.started(eps[0])
    lr.finished(eps[0])
    picks = Counter(lr.choose(eps).port for _ in range(2000))
    assert 900 < picks[40000] < 1100
    assert lr.in_flight == {}


def test_least_request_steers_away_from_a_replica_with_requests_in_flight():
    eps = endpoints(count=2)
    lr = make_balancer("least_request", random.Random(1))
    lr.started(eps[0])
    assert {lr.choose(eps).port for _ in range(50)} == {40001}


def ejected(eps, *which, percent=100):
    """An outlier detector with `which` endpoints of `eps` ejected."""
    detector = OutlierDetector(
        OutlierDetectionPolicy(consecutive_5xx=1, max_ejection_percent=percent), clock=FakeClock()
    )
    for index in which:
        detector.record_failure(eps[index], len(eps))
    assert detector.ejected_count() == len(which)
    return detector


def test_no_registered_endpoint_is_503_uh():
    upstream = ScriptedUpstream(200)
    empty = balancer_layer(upstream, balancer=RoundRobin(), endpoints=lambda: [])
    response = run(empty(request()))
    assert (response.status, response.flags, response.body) == (503, {"UH"}, b"no healthy upstream")
    assert upstream.calls == []


def test_the_only_replica_ejected_still_gets_traffic_in_panic_mode():
    # Envoy's healthy panic threshold (50%): with fewer than half the endpoints available, the
    # balancer uses all of them rather than answering 503 UH to every request.
    eps = endpoints(count=1)
    stats = BalancerStats()
    upstream = ScriptedUpstream(200)
    handler = balancer_layer(
        upstream, balancer=RoundRobin(), endpoints=lambda: eps, available=ejected(eps, 0).available, stats=stats
    )
    statuses = [run(handler(request())).status for _ in range(5)]
    assert statuses == [200] * 5 and ports(e for _, e in upstream.calls) == [40000] * 5
    assert stats.panic_requests == 5


def test_panic_spreads_over_every_endpoint_when_fewer_than_half_are_available():
    eps = endpoints(count=4)
    stats = BalancerStats()
    upstream = ScriptedUpstream(200)
    handler = balancer_layer(
        upstream, balancer=RoundRobin(), endpoints=lambda: eps, available=ejected(eps, 0, 1, 2).available, stats=stats
    )
    for _ in range(8):
        run(handler(request()))
    assert Counter(e.port for _, e in upstream.calls) == {40000: 2, 40001: 2, 40002: 2, 40003: 2}
    assert stats.panic_requests == 8


def test_exactly_half_available_is_not_panic():
    eps = endpoints(count=4)
    stats = BalancerStats()
    upstream = ScriptedUpstream(200)
    handler = balancer_layer(
        upstream, balancer=RoundRobin(), endpoints=lambda: eps, available=ejected(eps, 0, 1).available, stats=stats
    )
    for _ in range(4):
        run(handler(request()))
    assert ports(e for _, e in upstream.calls) == [40002, 40003] * 2
    assert stats.panic_requests == 0


def test_an_unknown_destination_is_404_nr():
    def lookup():
        raise KeyError("nosuch")

    handler = balancer_layer(ScriptedUpstream(200), balancer=RoundRobin(), endpoints=lookup)
    response = run(handler(request(destination="nosuch")))
    assert (response.status, response.flags) == (404, {"NR"})
    assert "nosuch" in response.detail


def test_a_retry_avoids_the_endpoint_that_just_failed():
    eps = endpoints(count=2)
    upstream = ScriptedUpstream(200)
    rr = RoundRobin()
    handler = balancer_layer(upstream, balancer=rr, endpoints=lambda: eps)
    req = request()
    run(handler(req))
    first = req.endpoint
    for _ in range(3):  # whatever the round-robin position, the retry goes elsewhere
        req.attempt = 2
        req.endpoint = first
        run(handler(req))
        assert req.endpoint.port != first.port


def test_unknown_balancer_kind_is_refused():
    try:
        make_balancer("random", random.Random())  # type: ignore[arg-type]
    except ValueError as error:
        assert "random" in str(error)
    else:
        raise AssertionError("expected ValueError")


def test_least_request_skips_an_ejected_endpoint_even_when_it_is_idle():
    clock = FakeClock()
    eps = endpoints(count=3)
    detector = OutlierDetector(OutlierDetectionPolicy(consecutive_5xx=1, max_ejection_percent=50), clock=clock)
    detector.record_failure(eps[0], 3)
    upstream = ScriptedUpstream(200)
    handler = balancer_layer(
        upstream, balancer=LeastRequest(random.Random(2)), endpoints=lambda: eps, available=detector.available
    )
    for _ in range(40):
        run(handler(request()))
    chosen = Counter(e.port for _, e in upstream.calls)
    assert chosen[40000] == 0 and chosen[40001] > 5 and chosen[40002] > 5
