"""What every mesh component process shares: dying with its parent, reading its secrets, bounded resources,
announcing its ports, running until told to stop."""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import hmac
import json
import os
import resource
import signal
import socket
import sys
from collections.abc import Awaitable, Callable

PR_SET_PDEATHSIG = 1
READY_PREFIX = "MESH-READY "
SECRETS_ENV = "MESH_SECRETS_ON_STDIN"  # set by the supervisor: the first line on stdin is a JSON secrets document
MAX_SECRETS_BYTES = 1 << 20

# Per-process ceilings, generous for any normal experiment, so a runaway one (a call cycle, a flood
# of connections, a leak) hits its own limit instead of taking the machine down.
LIMITS = {
    "RLIMIT_NOFILE": 1024,  # open files and sockets
    "RLIMIT_AS": 1 << 30,  # 1 GiB of address space (a sidecar lives in ~30-60 MB)
    "RLIMIT_CPU": 4 * 3600,  # CPU seconds: four times a busy hour-long run
}


def apply_resource_limits(limits: dict[str, int] = LIMITS) -> None:
    """Lower this process's soft and hard limits to `limits` (never raise one above what we were given)."""
    for name, wanted in limits.items():
        which = getattr(resource, name)
        _soft, hard = resource.getrlimit(which)
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(which, (ceiling, ceiling))


def read_secrets() -> dict:
    """The JSON secrets document the supervisor wrote as the first line of our stdin.

    Secrets travel on an inherited pipe, not in argv (world-readable in /proc/<pid>/cmdline) and not in
    the environment (readable by the same user and copied into every grandchild). Read byte by byte
    so nothing after the line is consumed: the rest of stdin tells us when the supervisor is gone.
    """
    if not os.environ.get(SECRETS_ENV):
        raise SystemExit("this component needs its secrets on stdin (it is started by the supervisor)")
    line = bytearray()
    while len(line) < MAX_SECRETS_BYTES:
        byte = os.read(0, 1)
        if not byte or byte == b"\n":
            break
        line += byte
    return json.loads(line)


def token_digest(token: str) -> str:
    """What a component that checks a token keeps instead of the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches_digest(given: str | None, digest: str) -> bool:
    if not given or not digest:
        return False
    return hmac.compare_digest(token_digest(given), digest)


def bearer_token(headers: dict[str, str]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (names lower-cased), if any."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


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
    for candidate in [port, 0] if port else [0]:
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
    except TimeoutError:
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


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The event loop a component runs on: asyncio's own, or uvloop with MESH_EVENT_LOOP=uvloop.

    uvloop measured only ~5-10% less CPU per proxied request here (the time goes to the HTTP code and the
    loopback syscalls), and its TLS layer drops the alert OpenSSL queues when a handshake fails, so a
    refused client would see "unexpected EOF" instead of "certificate expired" or "unknown ca" (see
    sidecar.send_tls_alerts_on_handshake_failure, which can only patch asyncio's). Reasons a learner can
    read are worth more than that margin, so asyncio is the default.
    """
    if os.environ.get("MESH_EVENT_LOOP") == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_component(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` until SIGTERM/SIGINT or until the supervisor's pipe on our stdin closes."""
    if os.environ.get("MESH_PARENT_PID"):
        die_with_parent()
    apply_resource_limits()

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if os.environ.get("MESH_PARENT_PID"):
            watcher = asyncio.create_task(_stdin_closed(stop))  # noqa: F841 - held so it is not collected
        await main(stop)

    with asyncio.Runner(loop_factory=new_event_loop) as component:
        component.run(runner())
