"""A learner leaves a lab, its mesh idles out, and they come back: in a real browser (Chromium against uvicorn, a
real Celery worker whose experiments idle out after a few seconds), the lab page says in words that the mesh
stopped and why, Start again gives a fresh mesh, and the lab is completed on it."""

import pytest
from playwright.sync_api import expect

from labs.models import Lab, LabProgress
from sandbox.models import Experiment
from tests.factories import PASSWORD

from .conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(300)]
LIVE = 90_000  # ms: a generous bound for the mesh to start and the check to latch on a loaded machine
IDLE_SECONDS = 5  # the experiments' idle timeout here (120 s on a real site)
IDLED_OUT = 90  # s: the page's last presence expires (15 s), then the idle timeout; generous on a loaded machine


@pytest.fixture
def short_idle(monkeypatch):
    """The worker and the site both read the idle timeout from the environment (the site names it in words)."""
    monkeypatch.setenv("MESHLEARN_SANDBOX_IDLE_TIMEOUT", str(IDLE_SECONDS))
    monkeypatch.setenv("MESHLEARN_SANDBOX_RUNTIME", "in_process")


def test_a_learner_comes_back_to_a_lab_whose_mesh_idled_out_and_starts_again(
    short_idle, page, asgi_server, workers, learner, course
):
    workers.start("w1")
    lab = Lab.objects.get(slug="abort-fault")
    right = lab.prediction.options.get(is_correct=True)
    page.goto(f"{asgi_server}/accounts/login/")
    page.get_by_label("Username").fill(learner.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{asgi_server}{lab.get_absolute_url()}")
    page.get_by_label(right.text).check()
    page.get_by_role("button", name="Lock in my prediction").click()
    page.get_by_role("button", name="Start the lab").click()
    status = page.locator("#lab-status")
    expect(status).to_contain_text("effective success at the entry", timeout=LIVE)
    first = LabProgress.objects.get(user=learner, lab=lab).experiment_id

    # The learner goes to read something else: no page watches the mesh, and it stops by itself.
    page.goto(f"{asgi_server}/")
    wait_for(
        lambda: Experiment.objects.filter(pk=first, status="finished", end_reason="idle").exists(),
        timeout=IDLED_OUT,
        what="the unwatched experiment to idle out",
    )

    page.goto(f"{asgi_server}{lab.get_absolute_url()}")
    ended = page.locator("#lab-ended")
    expect(ended).to_contain_text("Your mesh for this lab has stopped")
    expect(ended).to_contain_text(f"no page had it open for {IDLE_SECONDS} seconds")
    expect(page.get_by_role("button", name="b fails 50% with 503")).to_be_disabled()

    ended.get_by_role("button", name="Start again").click()
    expect(page.locator("#lab-ended")).to_have_count(0)
    expect(status).to_contain_text("effective success at the entry: 100% — needs ≤ 70%", timeout=LIVE)
    again = LabProgress.objects.get(user=learner, lab=lab).experiment_id
    assert again != first

    page.get_by_role("button", name="b fails 50% with 503").click()
    expect(page.locator("#press-answer")).to_contain_text("Sent: b fails 50% with 503")
    expect(page.locator("#lab-complete")).to_contain_text("Lab complete", timeout=LIVE)
    expect(page.locator("#lab-complete")).to_contain_text(f"You predicted: {right.text}")
