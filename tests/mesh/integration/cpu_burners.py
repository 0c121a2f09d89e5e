"""Saturate this machine on purpose, boundedly: N processes that spin for at most a given time.

Each burner also stops by itself at its deadline, so a test that dies cannot leave one behind for long; the
context manager kills each by its own pid on the way out. Nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

_SPIN = """
import sys, time
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    for _ in range(20000):
        pass
"""


def default_count() -> int:
    """Twice the cores: the run queue stays about as long as the load of 5-6 the issue measured on 2 cores."""
    return 2 * (os.cpu_count() or 1)


@contextlib.contextmanager
def cpu_burners(count: int | None = None, *, seconds: float = 60.0):
    """Start `count` spinning processes (at most `seconds` each); yield their pids; kill each on exit."""
    processes = [
        subprocess.Popen([sys.executable, "-c", _SPIN, str(seconds)], stdin=subprocess.DEVNULL)
        for _ in range(count if count is not None else default_count())
    ]
    try:
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait(timeout=10)
