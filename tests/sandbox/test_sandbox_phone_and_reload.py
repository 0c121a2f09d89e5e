"""What a learner meets across time, in a real browser (Chromium against uvicorn, a real Celery worker running
a real mesh): on a phone the graph and the circuit breakers fit the screen while they act, and reloading the
experiment page mid-run or after the end shows the live state, or the final numbers, again."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.sandbox.test_sandbox_browser import LIVE, log_in, metric_is

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(300)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# Boxes of what must be on screen: every node of the graph that is shown, every breaker field.
OFF_SCREEN = """(selector) => [...document.querySelectorAll(selector)]
    .filter((e) => e.getClientRects().length && e.getBoundingClientRect().width > 0)
    .map((e) => { const r = e.getBoundingClientRect();
                  return {text: e.textContent.trim().slice(0, 40), left: r.left, right: r.right}; })
    .filter((r) => r.left < 0 || r.right > window.innerWidth)"""
SHOWN = """(selector) => [...document.querySelectorAll(selector)]
    .filter((e) => e.getClientRects().length && e.getBoundingClientRect().width > 0).length"""


def node(page, name: str):
    """The node the learner sees: the graph is drawn twice (across, and down for phones), one shown."""
    return page.locator(f'#graph :is([data-node="{name}"], [data-phone-node="{name}"]):visible')


def start(page, server: str, user, topology: str) -> None:
    log_in(page, server, user.username)
    page.get_by_role("link", name="Sandbox", exact=True).click()
    page.locator(f"input[name=topology][value={topology}]").check()
    page.get_by_role("button", name="Start the mesh").click()
    expect(page.locator("#status")).to_contain_text("Running", timeout=LIVE)
    metric_is(page, "effective", "> 0")


def fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    selectors = ("#graph .mesh-node", "#breaker th[scope=row]", "#breaker td")
    assert all(page.evaluate(SHOWN, selector) for selector in selectors)
    off_screen = {selector: page.evaluate(OFF_SCREEN, selector) for selector in selectors}
    assert off_screen == dict.fromkeys(selectors, []), off_screen


def test_on_a_phone_the_shop_graph_and_breakers_fit_the_screen_while_the_learner_acts(
    browser, asgi_server, workers, learner
):
    workers.start("w1")
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        start(page, asgi_server, learner, "shop")
        page.get_by_role("button", name="Inject 50% 503 errors at service catalog").click()
        expect(page.locator("#commands")).to_contain_text("applied", timeout=LIVE)
        expect(node(page, "catalog")).to_contain_text("fault", timeout=LIVE)
        expect(page.locator("#breaker tr", has_text="cart → payments")).to_be_visible(timeout=LIVE)
        fits(page)
        # Top to bottom on a phone: the callee is below its caller, not off to the right.
        frontend = node(page, "frontend").bounding_box()
        payments = node(page, "payments").bounding_box()
        assert payments["y"] > frontend["y"] + frontend["height"]
        # Graph text stays readable (the lesson diagrams' bar: 10 px).
        heights = page.eval_on_selector_all(
            "#graph text",
            "els => els.filter(e => e.getClientRects().length).map(e => e.getBoundingClientRect().height)",
        )
        assert min(heights) >= 10, min(heights)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "sandbox-shop-390.png"), full_page=True)
        page.locator("#graph").screenshot(path=str(ARTIFACTS / "sandbox-shop-390-graph.png"))
        page.locator("#breaker").screenshot(path=str(ARTIFACTS / "sandbox-shop-390-breaker.png"))

        page.set_viewport_size(DESKTOP)
        fits(page)
        # Wide screens keep the graph left to right.
        frontend = node(page, "frontend").bounding_box()
        payments = node(page, "payments").bounding_box()
        assert payments["x"] > frontend["x"] + frontend["width"]
        page.screenshot(path=str(ARTIFACTS / "sandbox-shop-1280.png"), full_page=True)
    finally:
        context.close()


def test_reloading_the_experiment_page_mid_run_and_after_the_end(page, asgi_server, workers, learner):
    workers.start("w1")
    start(page, asgi_server, learner, "pair")
    url = page.url

    # Mid-run: the reloaded page shows the live state again and its buttons still act.
    response = page.reload()
    assert response.status == 200 and page.url == url
    expect(page.locator("#status")).to_contain_text("Running", timeout=LIVE)
    expect(node(page, "b")).to_be_visible()
    # The numbers keep updating after the reload (the page opened its stream again): the status line and the
    # golden metrics' sparklines both change.
    before = {part: page.locator(part).inner_html() for part in ("#status", "#metrics")}
    for part, html in before.items():
        page.wait_for_function(
            "([part, before]) => document.querySelector(part).innerHTML !== before", arg=[part, html], timeout=LIVE
        )
    page.get_by_role("button", name="Remove the retries on calls to service b").click()
    page.get_by_role("button", name="Inject 50% 503 errors at service b").click()
    expect(node(page, "b")).to_contain_text("fault: 50% 503", timeout=LIVE)
    metric_is(page, "effective", "< 80")
    expect(page.locator("#commands li")).to_have_count(2)

    # A second reload mid-run keeps the learner's commands and the broken state.
    page.reload()
    expect(page.locator("#commands li")).to_have_count(2)
    expect(node(page, "b")).to_contain_text("fault: 50% 503", timeout=LIVE)

    # The learner stops it; then reloads: the final numbers, a way to start again, and no error.
    page.get_by_role("button", name="Stop the experiment").click()
    expect(page.locator("#status")).to_contain_text("Ended", timeout=LIVE)
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    response = page.reload()
    assert response.status == 200
    expect(page.locator("#status")).to_contain_text("Ended")
    expect(page.locator("#status")).not_to_contain_text("Failed")
    effective = page.locator("[data-metric=effective]").first.inner_text()
    assert effective.strip().endswith("%") and float(effective.strip().rstrip("%")) < 100, effective
    expect(node(page, "b")).to_contain_text("fault: 50% 503")
    expect(page.locator("#commands li")).to_have_count(2)
    expect(page.get_by_role("button", name="Inject 50% 503 errors at service b")).to_have_count(0)
    page.get_by_role("link", name="Start another").click()
    expect(page.get_by_role("button", name="Start the mesh")).to_be_visible()
    page.wait_for_timeout(500)  # let a late stream reconnect attempt show itself, if there were one
    assert errors == [], errors
