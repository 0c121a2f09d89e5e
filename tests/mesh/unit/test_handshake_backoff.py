"""The backoff policy after failed handshakes: pure, a clock reading and a random source passed in."""

import random

import pytest

from sandbox.mesh.dataplane.handshake_backoff import CAP_SECONDS, HandshakeBackoff, backoff_delay


class Fixed(random.Random):
    """A random source whose uniform(a, b) lands at a fixed fraction of the way from a to b."""

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction


@pytest.mark.parametrize(
    "failures, lowest, highest",
    [
        (0, 0.0, 0.0),  # no failure: no wait
        (1, 0.025, 0.05),  # the ceiling starts at the base (50 ms); the delay is in its upper half
        (2, 0.05, 0.1),
        (3, 0.1, 0.2),
        (4, 0.2, 0.4),
        (5, 0.4, 0.8),
        (6, 0.5, 1.0),  # capped at 1 s from here on
        (7, 0.5, 1.0),
        (60, 0.5, 1.0),  # a long outage does not overflow or grow past the cap
    ],
)
def test_the_delay_doubles_per_failure_up_to_the_cap_and_is_never_zero_after_a_failure(failures, lowest, highest):
    assert backoff_delay(failures, Fixed(0.0)) == pytest.approx(lowest)
    assert backoff_delay(failures, Fixed(1.0)) == pytest.approx(highest)


def test_jitter_spreads_the_callers_of_one_endpoint_inside_the_bounds():
    rng = random.Random(7)
    delays = [backoff_delay(3, rng) for _ in range(200)]
    assert all(0.1 <= d <= 0.2 for d in delays)
    assert len({round(d, 6) for d in delays}) > 150  # not all coming back in the same instant


@pytest.mark.parametrize(
    "base, cap, failures, expected_ceiling",
    [(0.1, 0.3, 1, 0.1), (0.1, 0.3, 2, 0.2), (0.1, 0.3, 3, 0.3), (0.1, 0.3, 9, 0.3)],
)
def test_base_and_cap_are_settings(base, cap, failures, expected_ceiling):
    assert backoff_delay(failures, Fixed(1.0), base=base, cap=cap) == pytest.approx(expected_ceiling)


def test_an_endpoint_waits_after_each_failure_and_a_success_forgets_them():
    backoff = HandshakeBackoff()
    rng = Fixed(1.0)
    assert backoff.remaining(now=100.0) == 0.0  # never failed: a handshake may start now

    assert backoff.failed(100.0, rng) == pytest.approx(0.05)
    assert backoff.remaining(100.0) == pytest.approx(0.05)
    assert backoff.remaining(100.02) == pytest.approx(0.03)
    assert backoff.remaining(100.05) == 0.0

    assert backoff.failed(100.05, rng) == pytest.approx(0.1)  # the second failure in a row waits longer
    assert backoff.remaining(100.10) == pytest.approx(0.05)

    backoff.succeeded()
    assert backoff.remaining(100.10) == 0.0
    assert backoff.failed(200.0, rng) == pytest.approx(0.05)  # back to the first step


def test_the_wait_never_exceeds_the_cap_however_many_failures():
    backoff = HandshakeBackoff()
    rng = random.Random(1)
    now = 0.0
    for _ in range(100):
        delay = backoff.failed(now, rng)
        assert 0.0 < delay <= CAP_SECONDS
        assert backoff.remaining(now) == pytest.approx(delay)
        now += delay
