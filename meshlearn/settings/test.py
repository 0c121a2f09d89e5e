"""Test profile: fast hashing, an in-memory cache, plain static storage."""

from . import test_workers  # noqa: F401  (first: it chooses this worker's Redis and var directory)
from .base import *  # noqa: F403
from .env import env_str

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
VAR_DIR.mkdir(parents=True, exist_ok=True)  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  (whitenoise warns when it is missing)

# On SQLite the test database is a file, not shared memory, so that a live server's threads and a
# second connection hold real, separate connections: the concurrency tests see SQLite's real locking.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}  # noqa: F405
# Sandbox experiments in tests: short deadlines so a forgotten one ends by itself.
SANDBOX_IDLE_TIMEOUT = int(env_str("MESHLEARN_SANDBOX_IDLE_TIMEOUT", "60"))
SANDBOX_LIFETIME = int(env_str("MESHLEARN_SANDBOX_LIFETIME", str(5 * 60)))
SANDBOX_HEARTBEAT_INTERVAL = 1
# The browser tests serve the site with uvicorn, as bin/run does; static files straight from the finders.
WHITENOISE_USE_FINDERS = True
