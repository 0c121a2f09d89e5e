"""Fakes for unit tests of the mesh layers: a settable clock, a sleep that advances it, a
virtual-time event loop, and a scriptable upstream."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sandbox.mesh.config.model import Endpoint, Request, Response


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSleep:
    """An awaitable sleep that records each delay and moves the fake clock instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(seconds)


def endpoints(service: str = "b", count: int = 3) -> list[Endpoint]:
    return [Endpoint(service, "127.0.0.1", 40000 + i, replica=i) for i in range(count)]


def request(path: str = "/", destination: str = "b", **kwargs: Any) -> Request:
    return Request(method=kwargs.pop("method", "GET"), path=path, destination=destination, **kwargs)


class ScriptedUpstream:
    """A fake `send`: answers each call with the next item of `script` (a status, a Response,
    an exception to raise, or a callable taking the request), repeating the last one."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script) or [200]
        self.calls: list[tuple[int, Endpoint | None]] = []  # (attempt, endpoint) per call

    async def __call__(self, req: Request) -> Response:
        self.calls.append((req.attempt, req.endpoint))
        step = self.script[min(len(self.calls), len(self.script)) - 1]
        if callable(step) and not isinstance(step, type):
            step = step(req)
            if asyncio.iscoroutine(step):
                step = await step
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, Response):
            return Response(step.status, dict(step.headers), step.body, set(step.flags), step.detail)
        return Response(step, body=b"ok" if step < 400 else b"error")


def run(coro: Coroutine[Any, Any, Any], *, limit: float = 10.0) -> Any:
    """Run `coro` to completion; a scenario stuck waiting fails after `limit` seconds, not never."""
    return asyncio.run(asyncio.wait_for(coro, limit))


# --------------------------------------------------------------------------- virtual time


class _JumpingSelector(selectors.BaseSelector):
    """Wraps a real selector; when the loop would wait for its next timer, jump the virtual
    clock forward instead of sleeping."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._loop = loop
        self._real = selectors.DefaultSelector()

    def register(self, fileobj, events, data=None):  # type: ignore[no-untyped-def]
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj):  # type: ignore[no-untyped-def]
        return self._real.unregister(fileobj)

    def modify(self, fileobj, events, data=None):  # type: ignore[no-untyped-def]
        return self._real.modify(fileobj, events, data)

    def get_map(self):  # type: ignore[no-untyped-def]
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout=None):  # type: ignore[no-untyped-def]
        ready = self._real.select(0)
        if ready or timeout is None or timeout <= 0:
            return ready
        self._loop.virtual_now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when every task waits on a timer: asyncio.sleep
    and asyncio.timeout behave as in real time, but a 10 s wait costs nothing."""

    def __init__(self) -> None:
        self.virtual_now = 1000.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.virtual_now


def run_virtual(make: Callable[[], Awaitable[Any]]) -> Any:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(make())
    finally:
        loop.close()
