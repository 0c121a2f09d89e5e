"""Bounded waits for database locks, for writes that are a convenience and must never hold up a page."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction


@contextmanager
def atomic_with_short_lock_wait(*, seconds: float, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """A transaction that waits at most `seconds` for a lock, then raises OperationalError (and
    writes nothing) instead of waiting the site's full DATABASE_LOCK_TIMEOUT_SECONDS."""
    connection = connections[using]
    milliseconds = max(1, int(seconds * 1000))
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {milliseconds}")
        try:
            with transaction.atomic(using=using):
                yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA busy_timeout = {int(settings.DATABASE_LOCK_TIMEOUT_SECONDS * 1000)}")
    elif connection.vendor == "postgresql":
        with transaction.atomic(using=using):
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{milliseconds}ms"])
            yield
    else:
        with transaction.atomic(using=using):
            yield
