"""The command lines of the site's web server and sandbox worker, for the harnesses that start them for real
(the tests, the benchmarks).

The worker is the Procfile's `sandbox` worker, named so that a harness can ping it and kill only its own: the queue
"sandbox", prefork, one task per child (a fresh process for each experiment)."""

import sys


def sandbox_worker_argv(*, node: str, capacity: int, log_level: str = "info") -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "meshlearn",
        "worker",
        "-Q",
        "sandbox",
        "-n",
        node,
        "-c",
        str(capacity),
        "-P",
        "prefork",
        "--max-tasks-per-child=1",
        "--without-gossip",
        "--without-mingle",
        "-l",
        log_level,
    ]


def web_server_argv(*, port: int) -> list[str]:
    """uvicorn on 127.0.0.1 (the live view streams server-sent events, so ASGI), quick to stop."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "meshlearn.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--timeout-graceful-shutdown",
        "2",
        "--no-access-log",
    ]
