"""A real uvicorn serving the site on a free loopback port, and raw-socket clients for it: what the live
stream and the ASGI edge tests need (a browser would hide when a socket closes and what it sent)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import redis
from django.conf import settings
from django.test import Client

from tests.sandbox.conftest import REPO, wait_for, worker_database_url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def uvicorn_server(log_dir: Path, *, environment: dict | None = None):
    """uvicorn meshlearn.asgi:application on 127.0.0.1 (as bin/run serves it); yields (port, pid)."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "meshlearn.settings.test",
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        **(environment or {}),
    }
    with open(log_dir / f"uvicorn-{port}.log", "ab") as log:
        process = subprocess.Popen(
            [
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
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    try:
        wait_for(answers, what="uvicorn")
        yield port, process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def session_cookie(user) -> str:
    """A logged-in session for `user` in the shared test database, as a Cookie header value."""
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def read_head(sock: socket.socket, *, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Read up to the end of the response head: (status, headers, the body bytes already received)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or len(lines[0].split()) < 2:
        raise AssertionError(f"no HTTP response head, got {data[:200]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, rest


def read_until(sock: socket.socket, marker: bytes, already: bytes = b"", *, timeout: float = 30) -> bytes:
    sock.settimeout(timeout)
    data = already
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def read_all(sock: socket.socket, already: bytes = b"", *, timeout: float = 30) -> bytes:
    sock.settimeout(timeout)
    data = already
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            # A server that stopped reading a body resets the connection after its answer: the answer is here.
            return data
        if not chunk:
            return data
        data += chunk


def open_stream(port: int, path: str, cookie: str) -> tuple[socket.socket, int, bytes]:
    """GET a server-sent-events stream on a raw socket; (socket, status, what followed the head)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    status, _headers, rest = read_head(sock)
    return sock, status, rest


def redis_clients() -> list[dict]:
    with contextlib.closing(redis.Redis.from_url(settings.REDIS_URL)) as client:
        return client.client_list()


def xread_clients() -> int:
    """Connections whose last command is a (blocking) XREAD: the live streams' readers."""
    return sum(1 for entry in redis_clients() if entry.get("cmd") == "xread")
