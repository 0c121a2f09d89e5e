"""The site works under its Content-Security-Policy: no violation on the pages a learner uses, and
htmx (served from the site's own static files) still swaps the lesson and practice fragments in."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_lesson_and_practice_work_with_no_policy_violation(page, live_server, course, learner):
    console = []
    page.on("console", lambda message: console.append(message.text))
    htmx_requests = []
    page.on("request", lambda request: htmx_requests.append(request.url) if request.headers.get("hx-request") else None)

    response = page.goto(f"{live_server.url}/accounts/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("Username").fill(learner.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{live_server.url}/lessons/why-service-mesh/")
    expect(page.locator(".lesson-body svg").first).to_be_visible()
    page.get_by_role("button", name="Mark lesson complete").click()
    expect(page.get_by_role("status").filter(has_text="You completed this lesson.")).to_be_visible()

    page.goto(f"{live_server.url}/practice/lesson/why-service-mesh/")
    page.get_by_role("button", name="Start practice").click()
    question_url = page.url
    page.locator("label.option").first.click()
    page.get_by_role("button", name="Check answer").click()
    expect(page.locator("#practice-card").get_by_role("heading", name=re.compile("Correct|Not quite"))).to_be_visible()
    assert page.url == question_url  # swapped in by htmx, not a full page load

    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("progressbar").locator("rect")).to_have_attribute("width", "17")

    assert any(url.endswith("/answer/") for url in htmx_requests), htmx_requests
    assert any(url.endswith("/complete/") for url in htmx_requests), htmx_requests
    violations = [text for text in console if re.search("Content Security Policy|Refused to|Permissions-Policy", text)]
    assert violations == []
