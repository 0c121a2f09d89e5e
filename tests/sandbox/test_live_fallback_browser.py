"""Beyond the live-stream cap the experiment page still updates: in Chromium, against uvicorn and a real
worker, a page whose stream is refused (429) says so and polls the fragments, and goes live again once a
slot frees."""

import pytest
from playwright.sync_api import expect

from sandbox import services
from sandbox.models import Experiment
from tests.sandbox.conftest import wait_for
from tests.sandbox.live_support import open_stream, session_cookie, uvicorn_server
from tests.sandbox.test_sandbox_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(300)]
LIVE = 120_000  # ms: htmx retries a refused stream with a growing delay (up to a minute), on a loaded machine


def test_a_page_over_the_stream_cap_polls_then_goes_live_again(page, workers, learner, tmp_path):
    workers.start("w1", environment={"MESHLEARN_SANDBOX_RUNTIME": "in_process"})
    experiment = services.experiment_start(user=learner, topology="pair")
    wait_for(lambda: Experiment.objects.get(pk=experiment.pk).status == "running", what="the mesh to run")
    with uvicorn_server(tmp_path, environment={"MESHLEARN_SANDBOX_STREAMS_PER_LEARNER": "1"}) as (port, _pid):
        url = f"http://127.0.0.1:{port}"
        # Another tab holds the learner's only live slot.
        other_tab, status, _rest = open_stream(
            port, f"/sandbox/experiments/{experiment.pk}/stream/", session_cookie(learner)
        )
        assert status == 200
        log_in(page, url, learner.username)
        page.goto(f"{url}{experiment.get_absolute_url()}")
        note = page.locator("#live-note")
        expect(note).to_be_visible(timeout=LIVE)
        expect(note).to_contain_text("refreshes every few seconds")
        for _ in range(2):  # it polls, again and again
            with page.expect_response(lambda r: r.url.endswith("/live/") and r.status == 200, timeout=LIVE):
                pass
        expect(page.locator("#status")).to_contain_text("Running")

        other_tab.close()  # the slot frees: htmx's next retry opens the stream and the polling stops
        expect(note).to_be_hidden(timeout=LIVE)
