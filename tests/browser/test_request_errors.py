"""A failed htmx request says so: htmx swaps nothing for a 413 or a 5xx, so the site's script fills the page's
error region with what happened and what to do (and a request that works clears it)."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def start_practice(page, live_server, learner):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(learner.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/practice/lesson/why-service-mesh/")
    page.get_by_role("button", name="Start practice").click()
    expect(page.get_by_text("Question 1 of")).to_be_visible()


def test_an_answer_too_large_for_the_server_shows_its_413_message(page, live_server, course, learner):
    start_practice(page, live_server, learner)
    console = []
    page.on("console", lambda message: console.append(message.text))
    # The browser sends a body larger than the answer view accepts; the real server refuses it with 413.
    page.route(
        "**/answer/", lambda route: route.continue_(post_data=(route.request.post_data or "") + "&pad=" + "x" * 10_000)
    )
    page.locator("label.option").first.click()
    page.get_by_role("button", name="Check answer").click()

    error = page.locator("#request-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("This request is too large")
    expect(error).to_contain_text("Nothing was saved")
    expect(page.get_by_role("button", name="Check answer")).to_be_visible()  # the question is still there
    assert [text for text in console if re.search("Content Security Policy|Refused to", text)] == []

    # Sent again at its normal size, the answer is graded and the message goes.
    page.unroute("**/answer/")
    page.get_by_role("button", name="Check answer").click()
    expect(page.locator("#practice-card").get_by_role("heading", name=re.compile("Correct|Not quite"))).to_be_visible()
    expect(error).to_be_hidden()


def test_a_busy_server_answer_tells_the_learner_to_try_again(page, live_server, course, learner):
    start_practice(page, live_server, learner)
    # The site's own 503 page for a database that stayed locked (meshlearn.middleware.DatabaseBusyMiddleware).
    from django.template.loader import render_to_string

    busy = render_to_string("503_busy.html")
    page.route(
        "**/answer/",
        lambda route: route.fulfill(status=503, body=busy, content_type="text/html", headers={"Retry-After": "2"}),
    )
    page.locator("label.option").first.click()
    page.get_by_role("button", name="Check answer").click()

    expect(page.get_by_role("alert").filter(has_text="busy")).to_contain_text("Try again in a few seconds")
    expect(page.get_by_role("button", name="Check answer")).to_be_visible()
