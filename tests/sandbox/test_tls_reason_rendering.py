"""What the experiment page shows when the entry's certificate is refused: the load generator's own view of each failed
request (who called, what, and why), carried from the engine's observer through the event's JSON to the fragment."""

import asyncio
import re

import pytest

from labs.decoder import decode
from sandbox.fragments import render_fragment
from sandbox.mesh.config.topology import load_topology, shipped_topology_path
from sandbox.mesh.runtime.events import CommandApplied, Snapshot, event_from_json
from sandbox.mesh.runtime.experiment import Experiment
from sandbox.state import ViewState

pytestmark = pytest.mark.integration

FACTS = {
    "id": 1,
    "topology": "pair",
    "status": "running",
    "status_label": "running",
    "end_reason": "",
    "is_active": True,
    "url": "/sandbox/experiments/1/",
    "worker_host": "",
    "started_at": None,
    "ended_at": None,
}


def _events_with_an_expired_entry_certificate() -> list:
    """A real pair mesh (one event loop) under load, its entry given an expired certificate: the events until two
    settled snapshots after that, each read back from its JSON as the live view does."""
    events: list = []

    async def body():
        experiment = None

        def on_event(event):
            events.append(event_from_json(event.to_json()))
            applied = [e for e in events if isinstance(e, CommandApplied)]
            snapshots = [e for e in events if isinstance(e, Snapshot)]
            if isinstance(event, Snapshot) and len(snapshots) == 1:
                experiment.submit({"action": "cert", "service": "a", "fault": "expired"})
            if applied and len([s for s in snapshots if s.t >= applied[0].t + 2]) >= 2:
                experiment.stop()

        experiment = Experiment(
            load_topology(shipped_topology_path("pair")), runtime="in_process", rate=10, on_event=on_event
        )
        await experiment.run(duration=60)  # a bound: stopped as soon as enough is seen

    asyncio.run(asyncio.wait_for(body(), 90))
    return events


def test_a_refused_entry_certificate_shows_its_reason_caller_method_and_path():
    events = _events_with_an_expired_entry_certificate()
    applied = next(e for e in events if isinstance(e, CommandApplied))
    last = [e for e in events if isinstance(e, Snapshot)][-1]
    assert last.t >= applied.t + 2 and last.recent, last
    state = ViewState()
    state.apply(last)  # one second well after the command: every request in it was refused

    requests = render_fragment("requests", facts=FACTS, state=state)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", requests))
    shown = text.count("GET / loadgen → a")
    assert shown >= 1 and shown == text.count("no answer UF in") == text.count("TLS error: certificate expired"), text
    assert "- - " not in text and "unknown" not in text, text
    log = render_fragment("log", facts=FACTS, state=state)
    assert re.search(r"loadgen → a: certificate expired × \d+", log), log

    # What a learner copies from the page, pasted into the decoder, is read as the same reason.
    line = text[text.index("GET / loadgen → a") :].split(" try ")[0]
    titles = [meaning.title for meaning in decode(line).meanings]
    assert "TLS handshake failure: certificate expired" in titles, (line, titles)
