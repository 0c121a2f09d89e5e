"""Load balancer: round robin and least request over endpoints not ejected; UH, NR."""

from __future__ import annotations

import random
from collections import Counter

from mesh_fakes import FakeClock, ScriptedUpstream, endpoints, request, run

from sandbox.mesh.balancer import LeastRequest, RoundRobin, balancer_layer, make_balancer
from sandbox.mesh.layers.outlier import OutlierDetector
from sandbox.mesh.model import OutlierDetectionPolicy


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


def test_no_endpoint_left_is_503_uh():
    eps = endpoints(count=2)
    detector = OutlierDetector(OutlierDetectionPolicy(consecutive_5xx=1, max_ejection_percent=100), clock=FakeClock())
    for endpoint in eps:
        detector.record_failure(endpoint, 2)
    upstream = ScriptedUpstream(200)
    handler = balancer_layer(upstream, balancer=RoundRobin(), endpoints=lambda: eps, available=detector.available)
    response = run(handler(request()))
    assert (response.status, response.flags, response.body) == (503, {"UH"}, b"no healthy upstream")
    assert upstream.calls == []
    empty = balancer_layer(upstream, balancer=RoundRobin(), endpoints=lambda: [])
    assert run(empty(request())).flags == {"UH"}


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
