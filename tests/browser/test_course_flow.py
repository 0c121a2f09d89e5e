"""The course in a real browser: Playwright driving Debian's Chromium against the live server."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from lessons.models import Lesson
from tests.factories import PASSWORD

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_learner_signs_up_reads_the_seed_lesson_and_sees_progress(page, live_server, course):
    page.goto(live_server.url)
    page.get_by_role("link", name="Sign up").first.click()
    page.get_by_label("Username").fill("newlearner")
    page.get_by_label("Password", exact=True).fill("mesh-learner-pass-42")
    page.get_by_label("Password confirmation").fill("mesh-learner-pass-42")
    page.get_by_role("button", name="Sign up").click()

    expect(page.get_by_text("0 of 6 lessons complete")).to_be_visible()
    page.get_by_role("link", name=re.compile("Why a service mesh")).first.click()

    table = page.locator(".lesson-body table").first
    expect(table).to_be_visible()
    expect(table).to_contain_text("100M Users / 10,000 Services")
    expect(table).to_contain_text("Requires full automation and control plane")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lesson-page.png"), full_page=False)

    page.get_by_role("button", name="Mark lesson complete").click()
    expect(page.get_by_role("status").filter(has_text="You completed this lesson.")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Course").click()
    expect(page.get_by_text("1 of 6 lessons complete")).to_be_visible()
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "17")
    expect(page.get_by_role("link", name=re.compile("Continue where you left off"))).to_be_visible()


def test_instructor_edits_a_lesson_in_the_admin_and_the_page_changes(page, live_server, instructor, lesson):
    log_in(page, live_server, instructor.username)
    page.goto(f"{live_server.url}/admin/lessons/lesson/{lesson.pk}/change/")
    page.get_by_label("Body markdown").fill("## Fresh section\n\nRewritten by the **instructor**.")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")

    page.goto(f"{live_server.url}{lesson.get_absolute_url()}")
    expect(page.locator(".lesson-body strong")).to_have_text("instructor")
    expect(page.get_by_role("heading", name="Fresh section")).to_be_visible()
    assert "Rewritten" in Lesson.objects.get(pk=lesson.pk).body_html


def test_lesson_page_fits_a_phone_and_is_keyboard_navigable(browser, live_server, lesson):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{live_server.url}{lesson.get_absolute_url()}")
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    context.close()
