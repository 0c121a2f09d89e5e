"""The queue's wait: an estimate from how long experiments really ran, and the worst case only as a bound."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from sandbox.models import Experiment
from sandbox.queue_estimate import QueueWait, queue_wait
from tests.factories import UserFactory

LIFETIME = 1200


@pytest.mark.parametrize(
    "ahead,capacity,running,recent,expected",
    [
        pytest.param(0, 2, [60], [300, 300], QueueWait(0, 0), id="a-free-slot-starts-now"),
        pytest.param(0, 1, [60], [300, 300, 300], QueueWait(240, 1140), id="the-running-one-ends-as-recent-ones-did"),
        pytest.param(0, 1, [60], [100, 300, 500], QueueWait(240, 1140), id="median-of-what-is-left"),
        pytest.param(0, 1, [400], [100, 300, 500], QueueWait(100, 800), id="only-longer-runs-say-how-long-it-lasts"),
        pytest.param(0, 1, [600], [100, 300, 500], QueueWait(300, 600), id="longer-than-any-halfway-to-its-lifetime"),
        pytest.param(0, 2, [60, 200], [300] * 5, QueueWait(100, 1000), id="the-first-of-two-to-end"),
        pytest.param(2, 2, [0, 0], [300] * 5, QueueWait(600, 2400), id="those-ahead-run-a-typical-duration-each"),
        pytest.param(1, 2, [60], [300] * 3, QueueWait(240, 1140), id="one-ahead-takes-the-free-slot"),
        pytest.param(0, 1, [60], [], QueueWait(None, 1140), id="nothing-measured-only-the-bound"),
        pytest.param(0, 1, [1300], [300], QueueWait(0, 0), id="past-its-lifetime-it-ends-now"),
        pytest.param(0, 0, [], [300], QueueWait(0, 0), id="no-capacity-configured-is-not-a-crash"),
    ],
)
def test_the_wait_for_a_slot(ahead, capacity, running, recent, expected):
    assert (
        queue_wait(ahead=ahead, capacity=capacity, running_elapsed=running, recent_durations=recent, lifetime=LIFETIME)
        == expected
    )


def test_the_estimate_is_never_above_the_bound():
    for elapsed in range(0, LIFETIME, 50):
        for ahead in range(4):
            wait = queue_wait(
                ahead=ahead,
                capacity=2,
                running_elapsed=[elapsed, 10],
                recent_durations=[30, 120, 130, 1200],
                lifetime=LIFETIME,
            )
            assert wait.estimate_seconds <= wait.bound_seconds


def test_the_queue_page_says_about_how_long_from_measured_runs_and_the_worst_case_as_a_bound(client, learner, settings):
    settings.SANDBOX_TOTAL_CAPACITY = 1
    settings.SANDBOX_LIFETIME = LIFETIME
    now = timezone.now()
    someone = UserFactory(username="someone")
    for minutes in (4, 5, 6):  # what experiments here really ran: about five minutes
        Experiment.objects.create(
            owner=someone,
            topology="pair",
            status="finished",
            end_reason="idle",
            started_at=now - timedelta(hours=1, minutes=minutes),
            ended_at=now - timedelta(hours=1),
        )
    Experiment.objects.create(
        owner=UserFactory(username="runner"),
        topology="pair",
        status="running",
        started_at=now - timedelta(minutes=1),
        heartbeat_at=now,
    )
    waiting = Experiment.objects.create(owner=learner, topology="pair")
    client.force_login(learner)
    body = client.get(reverse("sandbox:status", args=[waiting.pk])).content.decode()
    assert "You are number 1 in the queue" in body
    assert "about 4 minutes" in body  # five-minute runs, one minute in
    assert "at the latest in 19" in body  # the worst case, as a bound only
