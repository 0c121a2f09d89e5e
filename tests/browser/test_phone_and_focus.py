"""What a learner on a phone and a keyboard user notice: the verdict stays in view after
"Check answer", lesson diagrams are readable at 390 px, and the question editor fits a phone."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_practice_flow import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def in_viewport(page, selector):
    return page.eval_on_selector(
        selector, "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; }"
    )


@pytest.mark.parametrize("viewport", [PHONE, {"width": 1280, "height": 900}])
def test_after_check_answer_focus_is_on_the_verdict_and_the_verdict_is_in_view(
    browser, live_server, course, learner, viewport
):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        log_in(page, live_server, learner.username)
        page.goto(f"{live_server.url}/practice/lesson/why-service-mesh/")
        page.get_by_role("button", name="Start practice").click()
        page.locator("label.option").first.click()
        page.get_by_role("button", name="Check answer").click()

        verdict = page.locator("#result-heading")
        expect(verdict).to_be_focused()
        assert in_viewport(page, "#result-heading"), page.evaluate("window.scrollY")
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Practice: Why a service mesh manages inter-service traffic"
        )
        # Letters are read out with the option, since the feedback refers to them.
        assert page.locator(".result-options .option-letter").first.evaluate("e => e.closest('[aria-hidden]') === null")
    finally:
        context.close()


def test_lesson_diagrams_are_readable_on_a_phone(browser, live_server, course):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        for slug in [
            "why-service-mesh",
            "sidecar-data-path",
            "control-plane",
            "mtls-identity-authorization",
            "observability",
            "discovery-load-balancing-scale",
        ]:
            page.goto(f"{live_server.url}/lessons/{slug}/")
            heights = page.eval_on_selector_all(
                ".lesson-body figure svg text", "els => els.map(e => e.getBoundingClientRect().height)"
            )
            assert heights, slug
            assert min(heights) >= 10, f"{slug}: diagram text is {min(heights):.1f} px tall on a phone"
            spills = page.eval_on_selector_all(
                ".lesson-body figure svg",
                """svgs => svgs.flatMap(svg => {
                const boxes = [...svg.querySelectorAll('rect')].map(r => r.getBoundingClientRect());
                return [...svg.querySelectorAll('text')].flatMap(t => {
                    const b = t.getBoundingClientRect(), cx = b.left + b.width / 2, cy = b.top + b.height / 2;
                    const home = boxes.filter(r => cx > r.left && cx < r.right && cy > r.top && cy < r.bottom)
                                      .sort((p, q) => p.width * p.height - q.width * q.height)[0];
                    return home && (b.left < home.left - 1 || b.right > home.right + 1) ? [t.textContent] : [];
                });
            })""",
            )
            assert not spills, f"{slug}: labels spill out of their boxes: {spills}"
            # The page itself never scrolls sideways; a wide diagram scrolls inside its figure.
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), slug
    finally:
        context.close()


def log_in_instructor(page, live_server, instructor):
    from tests.factories import PASSWORD

    page.goto(f"{live_server.url}/accounts/login/?next=/admin/")
    page.get_by_label("Username").fill(instructor.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_be_visible()


def test_the_admin_preview_keeps_the_admin_header_readable(page, live_server, course, instructor):
    from quizzes.models import Question

    log_in_instructor(page, live_server, instructor)
    header = "e => [...document.querySelectorAll('#site-name a, #user-tools a')].map(a => getComputedStyle(a).color)"
    admin_colours = page.evaluate(f"({header})()")
    question = Question.objects.first()
    page.goto(f"{live_server.url}/admin/quizzes/question/{question.pk}/preview/")
    expect(page.locator(".practice-card").first).to_be_visible()
    assert page.evaluate(f"({header})()") == admin_colours  # the site's palette stays out of the admin header
    # The preview itself still looks like the learner's card.
    assert page.eval_on_selector(".option", "e => getComputedStyle(e).borderRadius") == "8px"


def test_the_question_editor_shows_whole_options_on_a_phone(browser, live_server, course, instructor):
    from quizzes.models import Question

    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        log_in_instructor(page, live_server, instructor)
        question = Question.objects.first()
        page.goto(f"{live_server.url}/admin/quizzes/question/{question.pk}/change/")
        fields = [
            f for f in page.locator("#options-group textarea, #options-group input[type=text]").all() if f.is_visible()
        ]
        assert len(fields) >= 2 * question.options.count()
        for field in fields:
            field.scroll_into_view_if_needed()
            box = field.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1, box
    finally:
        context.close()
