"""Settings that matter really take effect, and production passes `check --deploy`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def test_celery_picks_up_the_django_settings():
    from meshlearn.celery import app

    assert app.conf.task_time_limit == settings.CELERY_TASK_TIME_LIMIT == 900
    assert app.conf.broker_url == settings.REDIS_URL
    assert app.conf.task_acks_late is True


def test_database_url_selects_postgresql():
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://u:p@127.0.0.1:5432/meshlearn",
        "DJANGO_SETTINGS_MODULE": "meshlearn.settings.dev",
    }
    code = "import django; from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "django.db.backends.postgresql"


def production_check(extra_env: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "meshlearn.settings.production", **extra_env}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests' fixture, never in production
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_production_profile_passes_check_deploy_with_no_warnings():
    result = production_check(
        {
            "DJANGO_SECRET_KEY": "k3y-" + "x7Qp9vLm2Rt8Zw4Nc6Hb1Jd5Fg0Ks3Ye" * 2,
            "DJANGO_ALLOWED_HOSTS": "meshlearn.example",
        }
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_refuses_the_development_secret():
    result = production_check({"DJANGO_SECRET_KEY": settings.SECRET_KEY, "DJANGO_ALLOWED_HOSTS": "x"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY still holds the development key" in result.stderr


def test_database_lock_waits_are_bounded_and_sqlite_writers_queue(db):
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] == settings.DATABASE_LOCK_TIMEOUT_SECONDS * 1000
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
        elif connection.vendor == "postgresql":
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] == f"{settings.DATABASE_LOCK_TIMEOUT_SECONDS}s"


def test_a_lock_wait_that_runs_out_answers_503_try_again_not_500(rf):
    from django.db import OperationalError

    from meshlearn.middleware import DatabaseBusyMiddleware

    middleware = DatabaseBusyMiddleware(lambda request: None)
    busy = OperationalError("database is locked")
    response = middleware.process_exception(rf.post("/practice/attempts/1/answer/"), busy)
    assert response.status_code == 503 and response["Retry-After"] == "2"
    assert "Nothing was saved" in response.content.decode()
    assert middleware.process_exception(rf.get("/"), OperationalError("no such table: x")) is None


def test_the_redis_the_tests_use_asks_for_a_password():
    """bin/test's private Redis is protected as bin/run's is: a client without the password gets nothing."""
    import redis

    address = redis.Redis.from_url(settings.REDIS_URL).connection_pool.connection_kwargs
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=address["host"], port=address["port"], socket_connect_timeout=5).ping()


def local_debug(extra_env: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("MESHLEARN_DEBUG", "DJANGO_DEBUG")}
    env.update({"DJANGO_SETTINGS_MODULE": "meshlearn.settings.local", **extra_env})
    code = "import django; from django.conf import settings; print(settings.DEBUG)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_bin_runs_profile_has_debug_off_unless_asked_for_development():
    assert local_debug({}) == "False"
    assert local_debug({"MESHLEARN_DEBUG": "1"}) == "True"  # what `bin/run --dev` sets
