"""The pushed-config codec: a round trip keeps every policy, and each bad value is refused with its field path.

The pushed JSON is the topology's own spelling (schema.py), so these are the topology's messages."""

import pytest

from sandbox.mesh.config.model import (
    AuthorizationPolicy,
    AuthorizationRule,
    CircuitBreakerPolicy,
    FaultPolicy,
    OutlierDetectionPolicy,
    RetryPolicy,
    TimeoutPolicy,
    TrafficPolicy,
)
from sandbox.mesh.config.schema import SchemaError, parse_traffic
from sandbox.mesh.controlplane.meshconfig import authorization_from_dict, to_jsonable


def test_a_traffic_policy_survives_the_json_round_trip():
    policy = TrafficPolicy(
        load_balancer="least_request",
        timeout=TimeoutPolicy(request_timeout=2.0),
        retry=RetryPolicy(attempts=3, per_try_timeout=0.4, retry_on=frozenset({"5xx", "reset"})),
        circuit_breaker=CircuitBreakerPolicy(max_connections=20, max_pending_requests=10),
        outlier_detection=OutlierDetectionPolicy(consecutive_5xx=5, base_ejection_time=10.0, max_ejection_percent=50),
        fault=FaultPolicy(abort_percent=10.0, abort_status=503, delay_percent=5.0, delay_seconds=0.1),
    )
    assert parse_traffic(to_jsonable(policy)) == policy


def test_an_authorization_policy_survives_the_json_round_trip():
    policy = AuthorizationPolicy(allow=(AuthorizationRule(sources=("cart",), methods=("GET",), paths=("/pay*",)),))
    assert authorization_from_dict(to_jsonable(policy)) == policy
    assert authorization_from_dict(None) is None


@pytest.mark.parametrize(
    "traffic, message",
    [
        ({"retry": {"attempts": -1}}, "traffic.retry.attempts: must be a whole number from 0 to 10, got -1"),
        ({"retry": {"attempts": 1.5}}, "traffic.retry.attempts: must be a whole number"),
        ({"retry": {"attempts": 1, "retry_on": ["sometimes"]}}, "traffic.retry.retry_on[0]"),
        ({"load_balancer": "random"}, "traffic.load_balancer"),
        ({"fault": {"abort": {"percent": 150}}}, "traffic.fault.abort.percent"),
        ({"timeout": 0}, "traffic.timeout"),
        ({"retries": {}}, "traffic.retries: unknown key"),
    ],
)
def test_bad_values_are_refused_with_the_field_path(traffic, message):
    with pytest.raises(SchemaError) as caught:
        parse_traffic(traffic)
    assert message in str(caught.value)
