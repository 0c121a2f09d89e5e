"""Health probes for the database and Redis, each bounded so /healthz answers quickly."""

import redis
from django.conf import settings
from django.db import connection


def database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the reason is reported
        return False, f"{type(exc).__name__}: {exc}"
    return True, "ok"


def redis_ok() -> tuple[bool, str]:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return True, "ok"
