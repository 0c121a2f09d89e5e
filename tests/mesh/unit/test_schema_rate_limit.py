"""The rate limit in the one policy schema: the same spelling in YAML and pushed JSON, read back to the same
policy, and a limit that cannot work refused naming its field."""

import pytest

from sandbox.mesh.config.model import RateLimitPolicy
from sandbox.mesh.config.schema import SchemaError, dump_traffic, parse_traffic


def test_a_rate_limit_reads_back_from_its_document():
    policy = parse_traffic({"rate_limit": {"requests_per_second": 10, "burst": 5}})
    assert policy.rate_limit == RateLimitPolicy(requests_per_second=10, burst=5)
    assert parse_traffic(dump_traffic(policy)) == policy
    assert parse_traffic({"rate_limit": {"requests_per_second": 2.5}}).rate_limit.burst == 1
    assert "rate_limit" not in dump_traffic(parse_traffic({}))


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"burst": 5}, "traffic.rate_limit.requests_per_second: required"),
        ({"requests_per_second": 0}, "traffic.rate_limit.requests_per_second: must be a number from 0.001"),
        ({"requests_per_second": 10, "burst": 0}, "traffic.rate_limit.burst: must be a whole number from 1"),
        ({"requests_per_second": 10, "per": "minute"}, "traffic.rate_limit.per: unknown key"),
    ],
)
def test_a_limit_that_cannot_work_is_refused_naming_its_field(doc, message):
    with pytest.raises(SchemaError) as caught:
        parse_traffic({"rate_limit": doc})
    assert str(caught.value).startswith(message)
