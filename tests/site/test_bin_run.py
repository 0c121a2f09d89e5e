"""`bin/run` as a teacher starts it for a class, on a machine other accounts share: no traceback for learners,
a Redis nobody else can use, a database nobody else can read, and a log-in lockout no header can dodge.

The whole of bin/run runs once for this module (its own Redis, web server, workers and beat on free ports, a
fresh var/ in a temporary folder), then gets Ctrl-C."""

import http.cookiejar
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 300  # seconds: setup, migrations and the course, then five processes, on a loaded 2-core machine
pytestmark = [pytest.mark.integration, pytest.mark.sqlite, pytest.mark.timeout(900)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Site:
    url: str
    var_dir: Path
    redis_port: int
    log: Path
    process: subprocess.Popen

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def fetch(url: str, *, data: dict | None = None, headers: dict | None = None, opener=None) -> tuple[int, str, dict]:
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(data).encode() if data is not None else None, headers=headers or {}
    )
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=30) as response:
            return response.status, response.read().decode(errors="replace"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace"), dict(error.headers)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bin-run")
    port, redis_port = free_port(), free_port()
    # Nothing of the test run's own configuration: bin/run's defaults are what is under test.
    dropped = {
        "REDIS_URL",
        "DATABASE_URL",
        "DJANGO_SETTINGS_MODULE",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
        "MESHLEARN_DEBUG",
        "MESHLEARN_FORWARDED_ALLOW_IPS",
        "FORWARDED_ALLOW_IPS",
    }
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        MESHLEARN_VAR_DIR=str(folder / "var"),
        MESHLEARN_PORT=str(port),
        MESHLEARN_REDIS_PORT=str(redis_port),
        MESHLEARN_SANDBOX_WORKER_CAPACITY="1",  # one pool process: lighter on a shared machine
    )
    log = folder / "bin-run.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(ROOT / "bin" / "run")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: os.umask(0o022),  # a teacher's usual shell
        )
    started = Site(f"http://127.0.0.1:{port}", folder / "var", redis_port, log, process)
    deadline = time.monotonic() + START_DEADLINE
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"bin/run exited with {process.returncode}:\n{started.log_tail()}")
            try:
                if fetch(f"{started.url}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"bin/run was not healthy after {START_DEADLINE} s:\n{started.log_tail()}")
            time.sleep(0.5)
        yield started
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as a teacher stops it
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_learners_never_see_a_traceback_or_the_sites_insides(site):
    status, page, _ = fetch(f"{site.url}/no-such-page/")
    assert status == 404 and "We could not find that page" in page
    assert "URLconf" not in page and "DEBUG = True" not in page
    # A request for a host the site does not serve: with DEBUG, Django's technical page with the traceback.
    status, page, _ = fetch(f"{site.url}/", headers={"Host": "attacker.example"})
    assert status == 400
    assert "Traceback" not in page and "DisallowedHost" not in page and "settings" not in page.lower()


def test_static_files_load_without_collectstatic(site):
    status, page, _ = fetch(f"{site.url}/")
    assert status == 200
    stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', page).group(1)
    status, css, headers = fetch(f"{site.url}{stylesheet}")
    assert status == 200 and headers["Content-Type"].startswith("text/css") and "{" in css


def test_its_redis_refuses_a_client_without_the_password_which_no_command_line_shows(site):
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=site.redis_port, socket_connect_timeout=5).ping()
    password_file = site.var_dir / "redis-password"
    assert mode(password_file) == 0o600
    password = password_file.read_text().strip()
    assert len(password) >= 32
    assert redis.Redis(host="127.0.0.1", port=site.redis_port, password=password).ping()
    # `ps` shows every account each process's arguments: the password must be in none of them.
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert password.encode() not in cmdline.read_bytes(), f"{cmdline} shows the Redis password"
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue


def test_var_and_the_database_are_this_accounts_alone(site):
    assert mode(site.var_dir) == 0o700
    database = site.var_dir / "db.sqlite3"
    assert mode(database) == 0o600
    for companion in ("db.sqlite3-wal", "db.sqlite3-shm"):
        if (site.var_dir / companion).exists():
            assert mode(site.var_dir / companion) == 0o600


def test_manage_py_run_by_hand_beside_it_finds_its_redis(site):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(
        DJANGO_SETTINGS_MODULE="meshlearn.settings.local",
        MESHLEARN_VAR_DIR=str(site.var_dir),
        MESHLEARN_REDIS_PORT=str(site.redis_port),
    )
    code = "import django; django.setup(); from django.conf import settings; print(settings.REDIS_URL)"
    url = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert redis.Redis.from_url(url).ping()


def test_an_unknown_argument_is_refused_with_what_to_run(tmp_path):
    result = subprocess.run([str(ROOT / "bin" / "run"), "--debug"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown argument '--debug'" in result.stderr and "bin/run --dev" in result.stderr


def test_a_redis_already_on_its_port_without_its_password_is_named_not_used(tmp_path):
    """An older bin/run's open Redis, or someone else's: bin/run says so and stops, rather than use it."""
    port = free_port()
    stranger = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(
            MESHLEARN_VAR_DIR=str(tmp_path / "var"), MESHLEARN_REDIS_PORT=str(port), MESHLEARN_PORT=str(free_port())
        )
        run = subprocess.Popen(
            [str(ROOT / "bin" / "run")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = run.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGINT)
            run.communicate(timeout=60)
            pytest.fail("bin/run started the site on a Redis that does not take its password")
        assert run.returncode == 1
        assert f"127.0.0.1:{port} is not one bin/run started" in output and "MESHLEARN_REDIS_PORT" in output
    finally:
        stranger.terminate()
        stranger.wait(timeout=30)


def web_line() -> str:
    """The Procfile's `web` command: what honcho runs, with sh, for bin/run."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    return line.split(":", 1)[1].strip()


@pytest.fixture
def behind_a_proxy(site, tmp_path):
    """A second web server from the Procfile's line, on bin/run's database and Redis, told that 127.0.0.1 is its
    reverse proxy (MESHLEARN_FORWARDED_ALLOW_IPS)."""
    port = free_port()
    password = (site.var_dir / "redis-password").read_text().strip()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(
        PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        DJANGO_SETTINGS_MODULE="meshlearn.settings.local",
        MESHLEARN_VAR_DIR=str(site.var_dir),
        REDIS_URL=f"redis://:{password}@127.0.0.1:{site.redis_port}/0",
        MESHLEARN_PORT=str(port),
        MESHLEARN_FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    with open(tmp_path / "web.log", "wb") as out:
        process = subprocess.Popen(
            web_line(), shell=True, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    proxied = Site(f"http://127.0.0.1:{port}", site.var_dir, site.redis_port, tmp_path / "web.log", process)
    deadline = time.monotonic() + START_DEADLINE
    try:
        while True:
            try:
                if fetch(f"{proxied.url}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the web server did not start:\n{proxied.log_tail()}")
            time.sleep(0.5)
        yield proxied
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_behind_a_configured_proxy_its_x_forwarded_for_names_the_client(behind_a_proxy):
    for n in range(9):
        assert failed_log_in(behind_a_proxy, f"proxied{n}", forwarded_for="192.0.2.50") == 200
    assert failed_log_in(behind_a_proxy, "proxied9", forwarded_for="192.0.2.50") == 429
    # Another client behind the same proxy is not locked out with the first.
    assert failed_log_in(behind_a_proxy, "proxied-other", forwarded_for="192.0.2.51") == 200


def failed_log_in(site: Site, username: str, forwarded_for: str) -> int:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    _, form, _ = fetch(f"{site.url}/accounts/login/", opener=opener)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    status, _, _ = fetch(
        f"{site.url}/accounts/login/",
        data={"csrfmiddlewaretoken": token, "username": username, "password": "not-the-password"},
        headers={"X-Forwarded-For": forwarded_for},
        opener=opener,
    )
    return status


def test_failed_log_ins_count_against_the_real_address_whatever_x_forwarded_for_says(site):
    # Failures, each claiming another address and naming another account: all come from 127.0.0.1 ...
    for n in range(9):
        assert failed_log_in(site, f"guess{n}", forwarded_for=f"203.0.113.{n + 1}") == 200
    # ... so the tenth locks 127.0.0.1 out (10 per address), whichever address it and the next ones claim.
    assert failed_log_in(site, "guess9", forwarded_for="203.0.113.10") == 429
    assert failed_log_in(site, "guess-next", forwarded_for="198.51.100.77") == 429
