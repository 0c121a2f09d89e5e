"""What every mesh component process shares: dying with its parent, announcing its ports, running until told to stop."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import socket
import sys
from typing import Awaitable, Callable

PR_SET_PDEATHSIG = 1
READY_PREFIX = "MESH-READY "


def die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the supervisor dies, so a SIGKILLed supervisor leaves no child."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass
    expected = os.environ.get("MESH_PARENT_PID")
    # The parent may have died before prctl ran: then we were re-parented already.
    if expected and os.getppid() != int(expected):
        os._exit(1)


def announce(**info: object) -> None:
    """Tell the supervisor (reading our stdout) which ports the kernel gave us."""
    sys.stdout.write(READY_PREFIX + json.dumps(info) + "\n")
    sys.stdout.flush()


def bind_listener(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1; tries the requested port (a restart keeps its port), else any port."""
    for candidate in ([port, 0] if port else [0]):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", candidate))
        except OSError:
            sock.close()
            continue
        sock.listen(1024)
        sock.setblocking(False)
        return sock
    raise OSError("could not bind a port on 127.0.0.1")


async def close_server(server: asyncio.AbstractServer, writers) -> None:
    """Stop accepting, cut the open connections (keep-alive clients would hold them forever), and
    wait briefly for the listener to close."""
    server.close()
    for writer in list(writers):
        writer.transport.abort()
    try:
        await asyncio.wait_for(server.wait_closed(), 1.0)
    except asyncio.TimeoutError:
        pass


async def _stdin_closed(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (ValueError, OSError):
        return  # stdin is not a pipe (run by hand): nothing to watch
    while await reader.read(4096):
        pass
    stop.set()


def run_component(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` until SIGTERM/SIGINT or until the supervisor's pipe on our stdin closes."""
    if os.environ.get("MESH_PARENT_PID"):
        die_with_parent()

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if os.environ.get("MESH_PARENT_PID"):
            watcher = asyncio.create_task(_stdin_closed(stop))  # noqa: F841 - held so it is not collected
        await main(stop)

    asyncio.run(runner())
