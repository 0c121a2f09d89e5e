"""The live sandbox in a real browser: Chromium against uvicorn, a real Celery worker running a real mesh."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from sandbox.models import Experiment
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(300)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LIVE = 45_000  # ms: a generous bound for the live numbers to show a change on a loaded machine


def log_in(page, url: str, username: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def metric_is(page, key: str, comparison: str) -> None:
    """Wait until the live value of a metric (a percentage) satisfies `comparison`, e.g. '< 80'."""
    operator, limit = comparison.split()
    page.wait_for_function(
        "([key, operator, limit]) => { const node = document.querySelector(`[data-metric=${key}]`);"
        " const value = node && parseFloat(node.textContent);"
        " return !Number.isNaN(value) && (operator === '<' ? value < limit : value > limit); }",
        arg=[key, operator, float(limit)],
        timeout=LIVE,
    )


def effective_above_actual(page, points: int) -> None:
    """Wait until callers see at least `points` percentage points more success than b's tries got."""
    page.wait_for_function(
        "(points) => { const value = (key) => parseFloat(document.querySelector(`[data-metric=${key}]`).textContent);"
        " return value('effective') - value('actual') >= points; }",
        arg=points,
        timeout=LIVE,
    )


def test_a_learner_breaks_pair_with_503s_and_retries_hide_them(
    page, browser, asgi_server, workers, learner, other_learner
):
    workers.start("w1")
    log_in(page, asgi_server, learner.username)
    page.get_by_role("link", name="Sandbox", exact=True).click()
    page.get_by_role("button", name="Start the mesh").click()
    expect(page.locator("#status")).to_contain_text("Running", timeout=LIVE)
    metric_is(page, "effective", "> 90")
    edge = page.locator('[data-edge="a-b"]')
    expect(edge).to_contain_text("mTLS")

    page.get_by_role("button", name="Remove the retries on calls to service b").click()
    expect(page.locator("#commands li")).to_have_count(1)
    page.get_by_role("button", name="Inject 50% 503 errors at service b").click()
    metric_is(page, "actual", "< 75")
    metric_is(page, "effective", "< 75")  # no retries: the callers see the failures
    expect(page.locator('[data-node="b"]')).to_contain_text("fault: 50% 503", timeout=LIVE)
    expect(edge).not_to_contain_text("ok 100%")

    page.get_by_role("button", name="Add 3 retries with a 200 ms per-try timeout on calls to service b").click()
    # Retries recover much of what callers see (the retry budget caps them) while b still fails its tries.
    effective_above_actual(page, 20)
    metric_is(page, "actual", "< 60")
    expect(edge).to_contain_text("retries", timeout=LIVE)
    # The timeline shows a request's tries: a failed first try, then a retry after its backoff.
    expect(page.locator("#requests .attempt").filter(has_text="try 2").first).to_be_visible(timeout=LIVE)
    expect(page.locator("#commands li")).to_have_count(3)
    expect(page.locator("#commands")).not_to_contain_text("refused")

    # Another learner cannot see it.
    experiment = Experiment.objects.get(owner=learner)
    other = browser.new_context()
    stranger = other.new_page()
    log_in(stranger, asgi_server, other_learner.username)
    response = stranger.goto(f"{asgi_server}{experiment.get_absolute_url()}")
    assert response.status == 404
    other.close()

    # On a phone: nothing wider than the screen. With the keyboard: an action is a focusable button.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sandbox-phone.png"), full_page=True)
    page.get_by_role("button", name="Heal everything").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#commands li")).to_have_count(4)
    expect(page.locator('[data-node="b"]')).not_to_contain_text("fault", timeout=LIVE)

    page.get_by_role("button", name="Stop the experiment").click()
    expect(page.locator("#status")).to_contain_text("Ended", timeout=LIVE)
    expect(page.locator("#commands")).to_contain_text("503")
