"""Shared fixtures: users of each role, a loaded course, and a real Chromium for browser tests."""

import os
from pathlib import Path

import pytest

from tests.factories import InstructorFactory, LessonFactory, UserFactory

CHROMIUM = os.environ.get("MESHLEARN_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "test-artifacts"


@pytest.fixture
def learner(db):
    return UserFactory(username="ada")


@pytest.fixture
def other_learner(db):
    return UserFactory(username="grace")


@pytest.fixture
def instructor(db):
    return InstructorFactory(username="teacher")


@pytest.fixture
def lesson(db):
    return LessonFactory()


@pytest.fixture
def course(db):
    """The real course content from the repository, loaded as an operator would."""
    from django.core.management import call_command

    call_command("load_course", verbosity=0)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (no browser download: we pass the executable).

    Module scope: Playwright's sync API keeps an event loop running in this thread while it is
    open, which would break later tests that call asyncio.run (the mesh engine's)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run bin/test, which installs Debian's chromium package.")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the Django ORM calls made by tests
    # in the same thread are still synchronous, so allow them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield instance
        instance.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_collection_modifyitems(config, items):
    """Browser tests last: the fast suites report first, and no Playwright loop outlives them."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
