"""Benchmark of the live sandbox (a plain script, not a test): the site under uvicorn, a sandbox Celery worker,
real meshes, and Chromium measuring what a learner sees.

    REDIS_URL=redis://127.0.0.1:6379/15 python bench/sandbox.py [--quick] [--max 40] [--step 5] [--out FILE]

Measures:
  1. click "Start the mesh" -> the first live numbers on the page (pair topology, 20 req/s);
  2. an action -> its visible effect on the page, p95 over 20 actions (inject 50% 503 at b: the "fault" badge on b
     appears; heal everything: it goes);
  3. how many pair experiments at 20 req/s each run at once while, for one more started in the browser,
     start-to-live stays <= 5 s and action-to-visible (p95 of 5) <= 2 s. The others are started through the
     same service the start button calls and each is watched by an SSE client, as an open page would.

Everything binds to 127.0.0.1 and stops by itself. It uses its own SQLite file and the Redis database REDIS_URL
names (its sandbox queue and streams are cleared first: give it one no running site uses). Needs Debian's
chromium (MESHLEARN_CHROMIUM).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

START_TO_LIVE_LIMIT = 5.0
ACTION_TO_VISIBLE_LIMIT = 2.0
WAIT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


class Site:
    """uvicorn and one sandbox worker against a private database."""

    def __init__(self, workdir: Path, capacity: int) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "meshlearn.settings.dev",
            "DJANGO_DEBUG": "1",  # static files from the finders, no collectstatic
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "MESHLEARN_VAR_DIR": str(workdir),
            "MESHLEARN_SANDBOX_WORKER_CAPACITY": str(capacity),
            "MESHLEARN_SANDBOX_TOTAL_CAPACITY": str(capacity),
            "MESHLEARN_SANDBOX_STARTS_PER_WINDOW": "1000",
        }
        os.environ.update({k: v for k, v in self.env.items() if k != "DJANGO_SETTINGS_MODULE"})
        os.environ["DJANGO_SETTINGS_MODULE"] = "meshlearn.settings.dev"
        self.capacity = capacity
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Site:
        import django

        django.setup()
        import redis
        from django.conf import settings
        from django.core.management import call_command

        connection = redis.Redis.from_url(settings.REDIS_URL)
        connection.delete(*connection.scan_iter("sandbox:*"), "sandbox")  # stale sandbox messages and streams
        call_command("migrate", verbosity=0)
        from sandbox.testing import sandbox_worker_argv, web_server_argv

        self._spawn("uvicorn", web_server_argv(port=self.port))
        self._spawn(
            "worker",
            sandbox_worker_argv(node=f"bench@{socket.gethostname()}", capacity=self.capacity, log_level="warning"),
        )
        from meshlearn.celery import app

        deadline = time.monotonic() + WAIT
        while not app.control.ping(destination=[f"bench@{socket.gethostname()}"], timeout=0.5):
            if time.monotonic() > deadline:
                raise SystemExit("the sandbox worker did not start; see " + str(self.workdir / "worker.log"))
        return self

    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.workdir / f"{name}.log", "ab") as log:
            self.processes.append(
                subprocess.Popen(
                    argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )

    def __exit__(self, *exc) -> None:
        from sandbox import services
        from sandbox.models import Experiment

        for experiment in Experiment.objects.filter(status__in=Experiment.ACTIVE):
            services.experiment_stop(experiment=experiment)
        deadline = time.monotonic() + WAIT
        while Experiment.objects.filter(status__in=Experiment.OWNED).exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        for process in self.processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        from sandbox import processes

        for experiment in Experiment.objects.exclude(pgid=None):
            processes.process_group_kill(experiment.pgid)

    def session_for(self, username: str) -> tuple[object, str]:
        """A learner and a logged-in session cookie value (no login form: the form is not what is measured)."""
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
        from django.contrib.sessions.backends.db import SessionStore

        user, _ = get_user_model().objects.get_or_create(username=username)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        return user, session.session_key


class Watchers:
    """SSE clients keeping background experiments watched, as open pages would (on their own loop thread)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tasks = []

    def watch(self, experiment_id: int, session: str) -> None:
        self.tasks.append(asyncio.run_coroutine_threadsafe(self._watch(experiment_id, session), self.loop))

    async def _watch(self, experiment_id: int, session: str) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(
                    (
                        f"GET /sandbox/experiments/{experiment_id}/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        f"Cookie: sessionid={session}\r\nAccept: text/event-stream\r\n\r\n"
                    ).encode()
                )
                await writer.drain()
                while await reader.read(65536):
                    pass
                writer.close()
            except OSError:
                pass
            await asyncio.sleep(1)

    def close(self) -> None:
        async def cancel_all() -> None:
            current = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in current:
                task.cancel()
            await asyncio.gather(*current, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def settle(running: int) -> None:
    """Measure against a steady state: every background experiment up and loaded for a few seconds."""
    from sandbox.models import Experiment

    deadline = time.monotonic() + WAIT * 2
    while Experiment.objects.filter(status="running").count() < running:
        if time.monotonic() > deadline:
            raise SystemExit(f"{running} background experiments did not all start")
        time.sleep(0.5)
    time.sleep(3)


def measured_page(browser, site: Site, username: str):
    _, session = site.session_for(username)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": session, "url": site.url}])
    page = context.new_page()
    page.set_default_timeout(WAIT * 1000)
    return context, page


def start_to_live(page, site: Site) -> float:
    page.goto(f"{site.url}/sandbox/")
    button = page.get_by_role("button", name="Start the mesh")
    began = time.monotonic()
    button.click()
    page.wait_for_function(
        "() => { const n = document.querySelector('[data-metric=effective]');"
        " return n && !Number.isNaN(parseFloat(n.textContent)); }"
    )
    return time.monotonic() - began


def action_to_visible(page, count: int) -> list[float]:
    timings = []
    badge = page.locator('[data-node="b"] .node-badge', has_text="fault")
    for index in range(count):
        breaking = index % 2 == 0
        label = "Inject 50% 503 errors at service b" if breaking else "Heal everything"
        button = page.get_by_role("button", name=label)
        began = time.monotonic()
        button.click()
        if breaking:
            badge.first.wait_for(state="visible")
        else:
            badge.first.wait_for(state="detached")
        timings.append(time.monotonic() - began)
    return timings


def stop_measured(page, context) -> None:
    page.get_by_role("button", name="Stop the experiment").click()
    page.get_by_text("Ended").first.wait_for()
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one experiment, 4 actions, a ramp to 2")
    parser.add_argument("--max", type=int, default=40, help="the most concurrent experiments to try")
    parser.add_argument("--step", type=int, default=5, help="experiments added per ramp step")
    parser.add_argument("--out", type=Path, help="append the results as Markdown to this file")
    args = parser.parse_args()
    if "REDIS_URL" not in os.environ:
        raise SystemExit("set REDIS_URL to a Redis database this benchmark may flush")
    maximum = 2 if args.quick else args.max
    step = 1 if args.quick else args.step
    actions = 4 if args.quick else 20

    from playwright.sync_api import sync_playwright

    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as workdir, Site(Path(workdir), maximum + 1) as site:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM beside Playwright's loop in this thread
        from sandbox import services

        watchers = Watchers(site.port)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=os.environ.get("MESHLEARN_CHROMIUM", "/usr/bin/chromium"),
                headless=True,
                args=["--no-sandbox", "--disable-gpu"],
            )
            context, page = measured_page(browser, site, "bench-alone")
            first = start_to_live(page, site)
            timings = action_to_visible(page, actions)
            stop_measured(page, context)
            lines.append(f"| start to first live numbers (1 experiment) | {first:.2f} s |")
            lines.append(
                f"| action to visible effect, p95 of {len(timings)} | {p95(timings):.2f} s "
                f"(median {statistics.median(timings):.2f} s) |"
            )
            print(lines[-2], lines[-1], sep="\n", flush=True)

            held, background = 0, 0
            target = step
            while target <= maximum:
                while background < target - 1:
                    user, session = site.session_for(f"bench-{background}")
                    experiment = services.experiment_start(user=user, topology="pair")
                    watchers.watch(experiment.pk, session)
                    background += 1
                settle(target - 1)
                context, page = measured_page(browser, site, f"bench-measured-{target}")
                live = start_to_live(page, site)
                timings = action_to_visible(page, 5)
                stop_measured(page, context)
                ok = live <= START_TO_LIVE_LIMIT and p95(timings) <= ACTION_TO_VISIBLE_LIMIT
                print(
                    f"{target} running: start-to-live {live:.2f} s, action-to-visible p95 {p95(timings):.2f} s "
                    f"-> {'holds' if ok else 'over the limit'}",
                    flush=True,
                )
                if not ok:
                    break
                held = target
                target += step
            lines.append(
                f"| concurrent pair experiments at 20 req/s held (start <= 5 s, action <= 2 s) | {held}"
                f"{'+' if held >= maximum else ''} |"
            )
            browser.close()
        watchers.close()
    report = "\n".join(["| measure | result |", "| --- | --- |", *lines])
    print(report)
    if args.out:
        with args.out.open("a") as handle:
            handle.write(f"\n## Sandbox ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)\n\n{report}\n")


if __name__ == "__main__":
    main()
