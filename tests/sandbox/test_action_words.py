"""Labels and descriptions built from service names read as sentences: a service called "a" is always
"service a" (never "Make a send plain text"), and on the page its name is marked as a name (code style)."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from sandbox import selectors
from sandbox.actions import actions_for
from sandbox.mesh.runtime.commands import describe, parse_command
from sandbox.models import Experiment
from sandbox.templatetags.service_words import service_names

MARKED = re.compile(r'<code class="service-name">([^<]+)</code>')


def services_of(command: dict) -> set[str]:
    return {command[key] for key in ("service", "source") if key in command}


def cases():
    for topology in ("pair", "shop"):
        for action in actions_for(selectors.topology_get(topology)):
            yield pytest.param(topology, action.name, id=f"{topology}-{action.name}")


def the_action(topology: str, name: str):
    return next(action for action in actions_for(selectors.topology_get(topology)) if action.name == name)


@pytest.mark.parametrize(("topology", "name"), list(cases()))
def test_every_action_label_names_each_service_as_a_service(topology, name):
    action = the_action(topology, name)
    html = str(service_names(action.label, topology))  # the button as the page renders it
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
    shipped = selectors.topology_get(topology)
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
    labels = {action.name: action.label for action in actions_for(selectors.topology_get("pair"))}
    assert labels["plaintext"] == "Make service a send plain text (no mTLS)"
    assert labels["expired-cert"] == "Give service a an expired certificate"
    assert labels["deny"] == "Deny calls from service a to service b"
    assert labels["kill-sidecar"] == "Kill the sidecar of service b"
    pair = selectors.topology_get("pair")
    said = {
        action.name: describe(parse_command(action.command, pair))
        for action in actions_for(selectors.topology_get("pair"))
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


# --- the page's own sentences: the command list and the event log ---------------------------------------


FACTS = {"id": 1, "topology": "pair", "status": "running", "is_active": True}


@pytest.mark.parametrize(
    ("event", "words"),
    [
        (
            {"kind": "exited", "process": "sidecar", "service": "b", "replica": 0, "expected": True},
            "The sidecar of service b (replica 0) exited as asked.",
        ),
        (
            {"kind": "exited", "process": "service", "service": "a", "replica": 0, "code": 1},
            "The app of service a (replica 0) exited unexpectedly with code 1.",
        ),
        ({"kind": "exited", "process": "control_plane", "service": "", "code": -9}, "The control plane exited"),
        (
            {"kind": "nack", "service": "b", "replica": 0, "version": 3, "serving_version": 2, "reason": "bad"},
            "The sidecar of service b (replica 0) rejected configuration version 3 and keeps serving version 2: bad",
        ),
    ],
)
def test_the_event_log_names_each_service_as_a_service(event, words):
    from sandbox.fragments import event_words

    assert event_words(event).startswith(words)


def test_the_command_list_and_the_log_show_service_names_in_code_style():
    from types import SimpleNamespace

    from sandbox.fragments import render_fragment
    from sandbox.state import ViewState

    command = SimpleNamespace(
        t=1.5, sent_at=None, outcome="applied", answer="", description="service a gets an expired certificate"
    )
    listed = render_fragment("commands", facts=FACTS, state=ViewState(), commands=[command])
    assert 'service <code class="service-name">a</code> gets an expired certificate' in listed
    state = ViewState(notable=[{"kind": "applied", "t": 2.0, "said": "service b refuses calls from service a"}])
    log = render_fragment("log", facts=FACTS, state=state)
    assert (
        'Applied: service <code class="service-name">b</code> refuses calls from service '
        '<code class="service-name">a</code>' in log
    )
    # Only the topology's services are marked, and the words stay escaped.
    state = ViewState(notable=[{"kind": "refused", "t": 2.0, "reason": "service <z> is not here"}])
    assert "service &lt;z&gt; is not here" in render_fragment("log", facts=FACTS, state=state)
