"""A bounded listening socket: it accepts, caps and times out connections, and survives a failed accept.

Every listener of the mesh (sidecar inbound, outbound and admin, the demo services) accepts through
this. Each accepted connection holds a Slot until it closes; a slot carries the deadline of whatever
the connection waits for (the rest of a request, the next request on a keep-alive connection) and
whether it may be evicted (only when no request is in flight). A periodic sweep expires slots past
their deadline, and at the cap a new connection evicts the evictable slot closest to its deadline,
so a thousand slow clients cannot lock out a real one.

When accept() fails for lack of file descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), the
listener stops watching the socket for ACCEPT_RETRY_SECONDS and tries again, instead of dying, and
reports itself unhealthy meanwhile so readiness says what the listener can really do.
"""

from __future__ import annotations

import asyncio
import errno
import math
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

ACCEPT_RETRY_SECONDS = 0.25
ACCEPT_BATCH = 64  # accepts per readiness event, so one busy listener cannot starve the loop
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


@dataclass
class ListenerLimits:
    max_connections: int = 1024  # open connections per listener; the oldest idle or slow one makes room
    read_timeout: float = 10.0  # to send a whole request (head and body) once it started, or after connecting
    idle_timeout: float = 60.0  # a keep-alive connection with no request in flight

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.read_timeout <= 0 or self.idle_timeout <= 0:
            raise ValueError(f"listener limits must be positive: {self}")


class Slot:
    """One accepted connection's place in its listener."""

    __slots__ = ("deadline", "evictable", "expire", "listener", "released")

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.deadline = math.inf  # loop time after which `expire("timeout")` is called
        self.evictable = True
        self.expire: Callable[[str], None] = _ignore  # "timeout", "evicted" or "shutdown"; must close the connection
        self.released = False

    def wait(self, seconds: float) -> None:
        """The connection now waits for its peer, for at most `seconds`; it may be evicted meanwhile."""
        self.deadline = time.monotonic() + seconds
        self.evictable = True

    def busy(self) -> None:
        """A request is in flight: no deadline of the listener's, never evicted."""
        self.deadline = math.inf
        self.evictable = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.listener.slots.discard(self)


def _ignore(reason: str) -> None:
    pass


def reset(conn: socket.socket) -> None:
    """Close with a RST: the peer learns at once, and no TIME_WAIT is left behind."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    conn.close()


class Listener:
    """Accept on `sock` and hand each connection to `on_socket(conn, slot)`, which owns both from then on."""

    def __init__(
        self,
        sock: socket.socket,
        on_socket: Callable[[socket.socket, Slot], None],
        limits: ListenerLimits | None = None,
        *,
        name: str = "listener",
    ) -> None:
        self.sock = sock
        self.on_socket = on_socket
        self.limits = limits or ListenerLimits()
        self.name = name
        self.slots: set[Slot] = set()
        self.accept_error = ""  # why the last accept failed, "" once one works again
        self.counts = {"accepted": 0, "refused": 0, "evicted": 0, "timed_out": 0, "accept_failures": 0}
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watching = False
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._retry_timer: asyncio.TimerHandle | None = None

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._watch()
        self._schedule_sweep()

    def healthy(self) -> tuple[bool, str]:
        """Can this listener take a new connection right now? (False, why) when not."""
        if self.closed:
            return False, f"{self.name} listener is closed"
        if self.accept_error:
            return False, f"{self.name} listener cannot accept: {self.accept_error}"
        return True, ""

    def status(self) -> dict:
        return {
            "connections": len(self.slots),
            "max_connections": self.limits.max_connections,
            "accept_error": self.accept_error,
            **self.counts,
        }

    def close(self) -> None:
        """Stop accepting and expire every open connection."""
        if self.closed:
            return
        self.closed = True
        self._unwatch()
        for timer in (self._sweep_timer, self._retry_timer):
            if timer is not None:
                timer.cancel()
        self.sock.close()
        for slot in list(self.slots):
            slot.release()
            slot.expire("shutdown")

    # ------------------------------------------------------------------ accepting

    def _watch(self) -> None:
        if not self._watching and not self.closed:
            self._loop.add_reader(self.sock.fileno(), self._accept_ready)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._loop.remove_reader(self.sock.fileno())
            self._watching = False

    def _accept_ready(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                self.accept_error = ""  # accept() could take a descriptor: we can accept again
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    self._back_off(exc)
                    return
                continue  # that one connection was aborted before we took it (ECONNABORTED, EPROTO)
            self.accept_error = ""
            self.counts["accepted"] += 1
            slot = self._admit()
            if slot is None:
                self.counts["refused"] += 1
                reset(conn)
                continue
            conn.setblocking(False)
            try:
                self.on_socket(conn, slot)
            except Exception as exc:  # noqa: BLE001 - a bug for one connection must not end the listener
                slot.release()
                conn.close()
                self._loop.call_exception_handler(
                    {"message": f"{self.name}: connection setup failed", "exception": exc}
                )

    def _back_off(self, exc: OSError) -> None:
        self.counts["accept_failures"] += 1
        self.accept_error = exc.strerror or str(exc)
        self._unwatch()
        self._retry_timer = self._loop.call_later(ACCEPT_RETRY_SECONDS, self._retry_accept)

    def _retry_accept(self) -> None:
        if self.closed:
            return
        self._watch()
        self._accept_ready()  # also tells "healthy again" when nothing is pending

    def _admit(self) -> Slot | None:
        if len(self.slots) >= self.limits.max_connections:
            victim = min((s for s in self.slots if s.evictable), key=lambda s: s.deadline, default=None)
            if victim is None:
                return None
            self.counts["evicted"] += 1
            victim.release()
            victim.expire("evicted")
        slot = Slot(self)
        slot.wait(self.limits.read_timeout)
        self.slots.add(slot)
        return slot

    # ------------------------------------------------------------------ timeouts

    def _schedule_sweep(self) -> None:
        period = min(1.0, max(0.05, min(self.limits.read_timeout, self.limits.idle_timeout) / 4))
        self._sweep_timer = self._loop.call_later(period, self._sweep)

    def _sweep(self) -> None:
        if self.closed:
            return
        now = time.monotonic()
        for slot in [s for s in self.slots if s.deadline <= now]:
            self.counts["timed_out"] += 1
            slot.release()
            try:
                slot.expire("timeout")
            except Exception as exc:  # noqa: BLE001 - one connection's failure must not stop the sweep
                self._loop.call_exception_handler(
                    {"message": f"{self.name}: expiring a connection failed", "exception": exc}
                )
        self._schedule_sweep()
