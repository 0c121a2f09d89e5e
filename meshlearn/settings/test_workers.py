"""Keeps the suite's parallel workers apart: each pytest-xdist worker gets its own Redis (queues, streams and
the client counts some tests read) and its own var directory (SQLite test file, experiment sockets).

Imported by the test profile before the base settings read the environment. The choice is written back to
the environment, so the Celery workers and servers a test starts inherit the same Redis and directory; the
marker keeps a process that inherits it from applying it twice."""

import os

worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if worker and os.environ.get("MESHLEARN_TEST_WORKER") != worker:
    index = int(worker.removeprefix("gw") or 0)
    redis_urls = os.environ.get("MESHLEARN_TEST_REDIS_URLS", "").split()
    if redis_urls:
        os.environ["REDIS_URL"] = redis_urls[index % len(redis_urls)]
    if "MESHLEARN_VAR_DIR" in os.environ:
        os.environ["MESHLEARN_VAR_DIR"] = os.path.join(os.environ["MESHLEARN_VAR_DIR"], worker)
    os.environ["MESHLEARN_TEST_WORKER"] = worker
