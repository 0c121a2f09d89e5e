"""The polling fallback refuses an unknown part without sending back what it was given: a reflected
fragment would be HTML on the site's own origin, where an injected htmx attribute runs with the learner's
session and CSRF token."""

import pytest
from django.urls import reverse

from sandbox.models import Experiment

INJECTED = '<div hx-post="/sandbox/start/" hx-trigger="load" hx-vals=\'{"topology": "pair"}\'>x</div>'


@pytest.fixture
def ended(learner):
    return Experiment.objects.create(owner=learner, topology="pair", status="finished", end_reason="stopped")


def test_an_unknown_part_is_a_plain_text_400_that_does_not_echo_the_markup(client, learner, ended):
    client.force_login(learner)
    response = client.get(reverse("sandbox:live", args=[ended.pk]), {"part": INJECTED})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "<div" not in body and "hx-post" not in body
    assert "part: choose one of status, graph, metrics" in body


def test_a_known_part_is_still_its_fragment(client, learner, ended):
    client.force_login(learner)
    response = client.get(reverse("sandbox:live", args=[ended.pk]), {"part": "status"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
