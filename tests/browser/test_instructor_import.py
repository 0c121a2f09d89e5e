"""An instructor imports a GIFT file in the admin and sees the questions, in a real browser."""

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import expect

from meshlearn.celery import app
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GIFT = """$CATEGORY: {slug}

::flag-uo::A caller's access log shows 503 with flag UO. What happened?{{
=The circuit breaker's limit on pending requests overflowed#Right: UO is upstream overflow.
~The upstream refused the TLS handshake#That would be UF with a TLS reason.
~A fault was injected#That is FI.
}}

::flag-urx::What does URX mean?{{=Retries were exhausted ~The route was not found#That is NR.}}
"""


def test_instructor_imports_gift_and_sees_the_questions(page, live_server, instructor, lesson, tmp_path):
    gift_file = tmp_path / "flags.gift"
    gift_file.write_text(GIFT.format(slug=lesson.slug), encoding="utf-8")

    page.goto(f"{live_server.url}/accounts/login/?next=/admin/quizzes/question/")
    page.get_by_label("Username").fill(instructor.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("link", name="Import GIFT / Aiken").click()
    page.locator("#id_file").set_input_files(str(gift_file))
    page.get_by_label("Format").select_option("gift")
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        page.get_by_role("button", name="Import").click()
        # The page polls its progress fragment (htmx) until the worker is done, then shows the result.
        expect(page.locator("#import-status")).to_have_text("Imported", timeout=30_000)
    expect(page.locator("#count-created")).to_have_text("2")
    expect(page.locator("#import-bar")).to_have_attribute("value", "100")
    page.get_by_role("link", name="Back to the questions").click()
    expect(page.get_by_role("link", name="flag-uo")).to_be_visible()
    expect(page.get_by_role("link", name="flag-urx")).to_be_visible()

    page.get_by_role("link", name="flag-uo").click()
    expect(page.locator("#id_stem")).to_have_value("A caller's access log shows 503 with flag UO. What happened?")
