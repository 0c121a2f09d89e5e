"""On a shared machine the database (sessions, password hashes) is this account's alone: var/ is 0700 and the
SQLite file, its -wal and -shm are 0600, however permissive the shell that started the site."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# A Django process that writes, as the web server does, and reports the modes while the database is open (the
# -wal and -shm files exist only then).
WRITE_AND_LOOK = """
import django, os, stat, sys
django.setup()
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
session = SessionStore()
session["seen"] = True
session.create()
name = settings.DATABASES["default"]["NAME"]
for path in (name, name + "-wal", name + "-shm"):
    print(os.path.basename(path), oct(stat.S_IMODE(os.stat(path).st_mode)) if os.path.exists(path) else "missing")
"""


def site_process(var_dir: Path, *args: str) -> str:
    """A process as bin/run's would start, in the settings bin/run uses, from a shell with the usual umask 022."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update({"DJANGO_SETTINGS_MODULE": "meshlearn.settings.local", "MESHLEARN_VAR_DIR": str(var_dir)})
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_site_prepare_on_a_fresh_var_dir_makes_it_0700_and_every_database_file_0600(tmp_path):
    var_dir = tmp_path / "var"
    site_process(var_dir, "manage.py", "site_prepare")
    assert mode(var_dir) == "0o700"
    assert mode(var_dir / "db.sqlite3") == "0o600"

    seen = dict(line.split() for line in site_process(var_dir, "-c", WRITE_AND_LOOK).splitlines())
    assert seen == {"db.sqlite3": "0o600", "db.sqlite3-wal": "0o600", "db.sqlite3-shm": "0o600"}


def test_site_prepare_narrows_what_an_older_version_left_readable(tmp_path):
    var_dir = tmp_path / "var"
    var_dir.mkdir(mode=0o755)
    database = var_dir / "db.sqlite3"
    database.touch(mode=0o644)
    (var_dir / "db.sqlite3-wal").touch(mode=0o644)
    os.chmod(var_dir, 0o755)
    os.chmod(database, 0o644)
    os.chmod(var_dir / "db.sqlite3-wal", 0o644)

    output = site_process(var_dir, "manage.py", "site_prepare")
    assert mode(var_dir) == "0o700"
    assert mode(database) == "0o600"
    assert "==> Private files ..." in output
    for companion in ("db.sqlite3-wal", "db.sqlite3-shm"):
        if (var_dir / companion).exists():  # SQLite removes them when the last connection closes
            assert mode(var_dir / companion) == "0o600"
