"""Labels and descriptions built from service names read as sentences: a service called "a" is always
"service a" (never "Make a send plain text"), and on the page its name is marked as a name (code style)."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from sandbox import services
from sandbox.actions import actions_for
from sandbox.mesh.commands import describe, parse_command
from sandbox.models import Experiment

MARKED = re.compile(r'<code class="service-name">([^<]+)</code>')


def services_of(command: dict) -> set[str]:
    return {command[key] for key in ("service", "source") if key in command}


def cases():
    for topology in ("pair", "shop"):
        for action in actions_for(services.topology_get(topology)):
            yield pytest.param(topology, action.name, id=f"{topology}-{action.name}")


def the_action(topology: str, name: str):
    return next(action for action in actions_for(services.topology_get(topology)) if action.name == name)


@pytest.mark.parametrize(("topology", "name"), list(cases()))
def test_every_action_label_names_each_service_as_a_service(topology, name):
    action = the_action(topology, name)
    html = str(action.label_html)
    # Every service the command acts on is marked as a name on the button, and nothing else is.
    assert set(MARKED.findall(html)) == services_of(action.command)
    # Each marked name follows the word "service", so the sentence reads whatever the name is.
    for match in MARKED.finditer(html):
        assert html[: match.start()].endswith("service "), html
    # The plain label (the button's accessible name) is the same sentence, capitalised.
    assert strip_tags(html) == action.label and action.label[0].isupper()
    for service in services_of(action.command):
        assert f"service {service}" in action.label


@pytest.mark.parametrize(("topology", "name"), list(cases()))
def test_every_command_description_names_each_service_as_a_service(topology, name):
    shipped = services.topology_get(topology)
    words = describe(parse_command(the_action(topology, name).command, shipped))
    for service in services_of(the_action(topology, name).command):
        assert re.search(rf"\bservice {re.escape(service)}\b", words), words
    names = {service.name for service in shipped.services}
    # No service name stands alone, as in "a's sidecar calls ..." or "Deny a → b".
    for word in re.findall(r"[\w-]+(?:'s)?", words):
        bare = word.removesuffix("'s")
        if bare in names and bare != "a":  # "a" is also the article
            assert re.search(rf"\bservice {re.escape(bare)}\b", words), words
    assert not re.search(r"\b[a-z]+'s sidecar\b", words), words


def test_the_pair_topology_reads_as_english():
    labels = {action.name: action.label for action in actions_for(services.topology_get("pair"))}
    assert labels["plaintext"] == "Make service a send plain text (no mTLS)"
    assert labels["expired-cert"] == "Give service a an expired certificate"
    assert labels["deny"] == "Deny calls from service a to service b"
    assert labels["kill-sidecar"] == "Kill the sidecar of service b"
    pair = services.topology_get("pair")
    said = {
        action.name: describe(parse_command(action.command, pair))
        for action in actions_for(services.topology_get("pair"))
    }
    assert said["plaintext"] == "the sidecar of service a calls its peers in plain text"
    assert said["deny"] == "service b refuses calls from service a"
    assert said["kill-sidecar"] == "the sidecar of service b (replica 0) was killed"
    assert said["strict"] == "the sidecar of service b accepts only mTLS (STRICT)"
    assert said["expired-cert"] == "service a gets an expired certificate"


def test_the_experiment_page_shows_service_names_in_code_style(client, learner):
    running = Experiment.objects.create(
        owner=learner,
        topology="pair",
        status="running",
        worker_host="w1@nowhere",
        heartbeat_at=timezone.now(),
        started_at=timezone.now(),
    )
    client.force_login(learner)
    html = client.get(reverse("sandbox:experiment", args=[running.pk])).content.decode()
    assert (
        'value="plaintext">Make service <code class="service-name">a</code> send plain text (no mTLS)</button>' in html
    )
