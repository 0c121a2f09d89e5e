"""Practice in a real browser: a wrong answer, its feedback and solution, then retrying what was missed."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WRONG = "Implement a service mesh first"
RIGHT = "Measure and relieve the database"


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_learner_misses_a_seed_question_reads_why_and_gets_it_right_on_retry(page, live_server, course, learner):
    log_in(page, live_server, learner.username)
    page.goto(f"{live_server.url}/practice/lesson/why-service-mesh/")
    page.get_by_role("button", name="Start practice").click()

    expect(page.get_by_text("Question 1 of 8")).to_be_visible()
    # Before answering, nothing on the page marks the right option.
    assert "correct" not in page.content().lower()

    # The letters this learner sees beside the options before answering.
    letter_of = {
        # the letter itself, after the "Option " that only screen readers hear
        name: page.locator("label.option", has_text=name)
        .locator(".option-letter")
        .evaluate("e => e.lastChild.textContent")
        .strip()
        for name in (WRONG, RIGHT)
    }
    page.get_by_label(re.compile(WRONG)).check()
    page.get_by_role("button", name="Check answer").click()

    card = page.locator("#practice-card")
    expect(card.get_by_role("heading", name="✗ Not quite")).to_be_visible()
    expect(card.locator(".feedback")).to_contain_text("confuses managing traffic with serving it")
    expect(card.locator(".steps li")).to_have_count(3)
    # The solution names the letters this learner saw on the question page, not stored ones.
    expect(card.locator(".final-answer")).to_contain_text(f"→ Option {letter_of[RIGHT]}")
    expect(card.locator(".quick-check")).to_contain_text(f"= {letter_of[RIGHT]} ✓")
    expect(card.locator(".feedback h3")).to_have_text(f"About your answer ({letter_of[WRONG]})")
    expect(card.locator(".mistakes")).to_contain_text("Believing a service mesh adds capacity to a database")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Practice").click()
    page.get_by_role("button", name="Retry missed questions").click()
    expect(page.get_by_text("Question 1 of 1")).to_be_visible()
    page.get_by_label(re.compile(RIGHT)).check()
    page.keyboard.press("Enter")  # keyboard submit works too
    expect(page.locator("#practice-card").get_by_role("heading", name="✓ Correct")).to_be_visible()
    page.get_by_role("link", name="See your score").click()
    expect(page.get_by_role("heading", name="You scored 1 of 1 (100%)")).to_be_visible()
