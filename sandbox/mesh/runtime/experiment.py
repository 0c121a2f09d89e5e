"""One experiment, start to end: start a mesh, send it load, apply commands, and tell a consumer what happens.

`Experiment(topology, on_event=...)` runs in the caller's event loop. `run()` starts the mesh (as OS
processes, or in this loop), emits Started and the control plane's findings, sends open-loop load, emits a
Snapshot every `interval`, applies each submitted command in order (CommandApplied or CommandRefused with
the reason), reports process exits and NACKs as they are seen, and ends with Finished. The mesh is always
torn down: at the end, on stop(), when start fails, and when the task running it is cancelled.

The command line (`__main__.py`) prints these events; the site's Celery task writes them to Redis.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import yaml

from sandbox.mesh.config.model import Topology
from sandbox.mesh.runtime.commands import (
    CommandError,
    Kill,
    apply_command,
    command_to_json,
    parse_command,
)
from sandbox.mesh.runtime.events import (
    CommandApplied,
    CommandRefused,
    Event,
    Finding,
    Finished,
    ProcessExited,
    Snapshot,
    Started,
)
from sandbox.mesh.runtime.experiment_report import ExperimentReport
from sandbox.mesh.runtime.experiment_words import _reason
from sandbox.mesh.runtime.loadgen import LoadGenerator, Window
from sandbox.mesh.runtime.observe import Observer, edges_of
from sandbox.mesh.runtime.scenario import Scenario

if TYPE_CHECKING:  # for the type only: the runtimes are imported when a mesh starts
    from sandbox.mesh.runtime.mesh_base import MeshBase

log = logging.getLogger(__name__)
RUNTIMES = ("process", "in_process")
LOAD_TIMEOUT = 10.0  # seconds before the load generator counts a request as failed


class Experiment(ExperimentReport):
    def __init__(
        self,
        topology: Topology,
        *,
        runtime: str = "process",
        topology_path: str | None = None,
        rate: float = 20.0,
        on_event: Callable[[Event], Awaitable[None] | None],
        interval: float = 1.0,
        recent_limit: int = 50,
        log_dir: str | None = None,
        scenario: Scenario | None = None,
        load_timeout: float = LOAD_TIMEOUT,
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime: must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        self.topology = topology
        self.runtime = runtime
        self.topology_path = topology_path
        self.rate = rate
        self.on_event = on_event
        self.interval = interval
        self.recent_limit = recent_limit
        self.log_dir = log_dir
        self.scenario = scenario  # a scenario.Scenario: its steps are applied on schedule from load start
        self.load_timeout = load_timeout
        self.mesh: MeshBase | None = None  # ProcessMesh or InProcessMesh, once started
        self.load: LoadGenerator | None = None
        self.commands: list[dict] = []  # every command's outcome, in order
        self.steps: list[dict] = []  # the scenario's steps, as applied (or not)
        self._queue: asyncio.Queue[tuple[Any, str]] = asyncio.Queue()
        self._applying = asyncio.Lock()  # a learner's command and a scenario step never interleave
        self._stopped = asyncio.Event()
        self._stop_reason: str | None = None
        self._load_started: float | None = None
        self._seen_exits = 0
        self._seen_nacks: set[tuple] = set()
        self._temp_topology: str | None = None

    # ------------------------------------------------------------------ the API

    @property
    def pgid(self) -> int | None:
        return getattr(self.mesh, "pgid", None)

    def submit(self, command: dict, *, id: str = "") -> None:
        """Queue a command (JSON form) to be applied in order; its outcome comes as an event. Never raises."""
        try:
            self._queue.put_nowait((command, id))
        except Exception:  # an unbounded queue does not refuse; belt and braces, as submit never raises
            log.exception("could not queue command %r", command)

    def stop(self, reason: str = "stopped") -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stopped.set()

    async def run(self, *, duration: float | None = None) -> Finished:
        tasks: list[asyncio.Task] = []
        refused = await self._refuse_unrunnable()
        if refused is not None:
            return refused
        try:
            try:
                ready = await self._start()
            except Exception as exc:  # noqa: BLE001 - whatever stopped the start is the reason the run failed
                return await self._finish(f"failed: {_reason(exc)}", {})
            if not ready:
                return await self._finish(self._stop_reason or "stopped", {})
            await self._announce()
            self.load = LoadGenerator(
                "127.0.0.1",
                self.mesh.entry_ports(),
                rate=self.rate,
                host_header=self.topology.entry,
                ssl_context=await self.mesh.entry_ssl_context(),
                timeout=self.load_timeout,
                expected_identity=self.topology.spiffe_id(self.topology.entry),
            )
            observer = Observer(self.mesh, recent_limit=self.recent_limit)
            await observer.read()  # the baseline: counters from before the load do not count
            self._load_started = time.monotonic()
            load_task = asyncio.create_task(self.load.run(float("inf") if duration is None else duration))
            tasks = [load_task, asyncio.create_task(self._apply_submitted())]
            if self.scenario is not None:
                tasks.append(asyncio.create_task(self._run_scenario()))
            per_second = await self._observe(observer, load_task)
            reason = self._stop_reason or "completed"
            await _cancel(*tasks[1:])
            tasks = [load_task]
            samples = list(self.load.samples)
            self._steps_not_reached(duration)
            result = await self._result(duration, samples, per_second, observer)
            return await self._finish(reason, result)
        finally:
            await _cancel(*tasks)
            await self._teardown()

    # ------------------------------------------------------------------ start and end

    async def _refuse_unrunnable(self) -> Finished | None:
        """Finished("failed: ...") when the topology has error findings, as the command line refuses it:
        a call cycle fans every request out until the machine runs out of files, so no process starts."""
        from sandbox.mesh.controlplane.analyze import RunRefused, analyze, check_runnable

        try:
            check_runnable(self.topology)
        except RunRefused as exc:
            for finding in analyze(self.topology):
                if finding.severity == "error":
                    await self._emit(
                        Finding(
                            t=0.0,
                            code=finding.code,
                            severity=finding.severity,
                            subject=finding.subject,
                            message=finding.message,
                        )
                    )
            return await self._finish(f"failed: {_reason(exc)}", {})
        return None

    async def _start(self) -> bool:
        """Start the mesh unless stop() comes first; True when it is up."""
        from sandbox.mesh.runtime.supervisor import InProcessMesh, ProcessMesh

        if self.runtime == "in_process":
            self.mesh = InProcessMesh(self.topology)
        else:
            path = self.topology_path
            if path is None:
                # The control plane process reads the topology from a file: write the one we were given.
                from sandbox.mesh.config.topology import dump_topology

                handle, path = tempfile.mkstemp(prefix="mesh-topology-", suffix=".yaml")
                with os.fdopen(handle, "w") as out:
                    yaml.safe_dump(dump_topology(self.topology), out)
                self._temp_topology = path
            self.mesh = ProcessMesh(self.topology, path, log_dir=self.log_dir)
        start = asyncio.create_task(self.mesh.start())
        waiter = asyncio.create_task(self._stopped.wait())
        try:
            await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if not start.done():
                await _cancel(start)
        if start.cancelled():
            return False
        start.result()
        return True

    async def _announce(self) -> None:
        mesh = self.mesh
        pids = mesh.pids() if hasattr(mesh, "pids") else []
        await self._emit(
            Started(
                t=0.0,
                topology=self.topology.name,
                runtime=self.runtime,
                ready_seconds=round(mesh.ready_seconds, 3),
                processes=len(pids),
                pgid=self.pgid,
                services=[s.name for s in self.topology.services],
                edges=[list(edge) for edge in edges_of(self.topology)],
                control_socket=mesh.control_path,
                entry_ports=mesh.entry_ports(),
            )
        )
        status = await self._status()
        for finding in (status or {}).get("findings", []):
            await self._emit(
                Finding(
                    t=0.0,
                    code=str(finding.get("code", "")),
                    severity=str(finding.get("severity", "")),
                    subject=str(finding.get("subject", "")),
                    message=str(finding.get("message", "")),
                )
            )

    async def _finish(self, reason: str, result: dict) -> Finished:
        finished = Finished(t=self._t(), reason=reason, result=result)
        await self._emit(finished)
        return finished

    async def _teardown(self) -> None:
        if self.load is not None:
            self.load.close()
        if self.mesh is not None:
            try:
                await self.mesh.stop()
            except Exception:  # tearing down goes on; the log says what went wrong
                log.exception("stopping the mesh failed")
        if self._temp_topology is not None:
            try:
                os.unlink(self._temp_topology)
            except OSError:
                pass

    # ------------------------------------------------------------------ each interval

    async def _observe(self, observer: Observer, load_task: asyncio.Task) -> list[dict]:
        """Emit a Snapshot every interval until the load ends or stop() is called; the per-second rows."""
        per_second: list[dict] = []
        seen = 0
        last = self._load_started
        next_tick = self._load_started + self.interval
        stop_waiter = asyncio.create_task(self._stopped.wait())
        try:
            while not load_task.done() and not self._stopped.is_set():
                await asyncio.wait(
                    {load_task, stop_waiter},
                    timeout=max(0.0, next_tick - time.monotonic()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if self._stopped.is_set():
                    break
                next_tick += self.interval
                while next_tick < time.monotonic():  # a slow interval: skip ticks rather than burst
                    next_tick += self.interval
                now = time.monotonic()
                elapsed, last = now - last, now
                snapshot = await self._tick(observer, elapsed, self.load.samples[seen:])
                seen = len(self.load.samples)
                await self._report_exits()
                await self._report_nacks()
                await self._emit(snapshot)
                per_second.append(snapshot.one_second())
        finally:
            stop_waiter.cancel()
        return per_second

    async def _tick(self, observer: Observer, elapsed: float, samples: list) -> Snapshot:
        """One interval's Snapshot from the load generator's new samples and what the mesh reports now."""
        window = Window()
        flags: dict[str, int] = {}
        tls_failures: dict[str, int] = {}
        failures = []  # no answer because the connection failed: only the load generator saw these
        for sample in samples:
            window.add(sample)
            for flag in filter(None, sample.flags.split(",")):
                flags[flag] = flags.get(flag, 0) + 1
            if sample.tls_reason:
                tls_failures[sample.tls_reason] = tls_failures.get(sample.tls_reason, 0) + 1
            if sample.detail:
                failures.append(sample)
        summary = window.summary()
        reading = await observer.read()
        services, edges, recent = observer.snapshot(
            reading,
            elapsed,
            entry={**summary, "flags": flags, "tls_failures": tls_failures, "failures": failures},
            alive=self._alive(),
        )
        snapshot = Snapshot(
            t=self._t(),
            rate=self.load.rate,
            effective_success=summary["success_rate"],
            p50_ms=round(summary["p50_ms"], 3),
            p95_ms=round(summary["p95_ms"], 3),
            p99_ms=round(summary["p99_ms"], 3),
            requests=summary["requests"],
            services=services,
            edges=edges,
            recent=recent,
            statuses=summary["statuses"],
            actual_success=observer.called_actual(),
            in_flight=self.load.in_flight,
            totals={k: v for k, v in observer.totals.items() if isinstance(v, int)},
            control_plane_alive=self.mesh.alive("control_plane", "control-plane", 0),
        )
        return snapshot

    def _alive(self) -> dict[str, dict[str, bool]]:
        alive: dict[str, dict[str, bool]] = {}
        for svc in self.topology.services:
            row = alive[svc.name] = {}
            for replica in range(svc.replicas):
                row[f"app-{replica}"] = self.mesh.alive("service", svc.name, replica)
                if svc.sidecar:
                    row[f"sidecar-{replica}"] = self.mesh.alive("sidecar", svc.name, replica)
        return alive

    async def _status(self) -> dict | None:
        """The control plane's status, or None while it cannot be reached (killed, restarting)."""
        try:
            return await self.mesh.status()
        except Exception:  # noqa: BLE001 - an unreachable control plane is a state to show, not a crash
            return None

    # ------------------------------------------------------------------ commands

    async def _apply_submitted(self) -> None:
        while True:
            data, id_ = await self._queue.get()
            await self.apply(data, id=id_)

    async def apply(self, data: Any, *, id: str = "") -> dict:
        """Parse and apply one command now; emits CommandApplied or CommandRefused, returns the outcome."""
        shown = data if isinstance(data, dict) else {"value": repr(data)[:200]}
        try:
            command = parse_command(data, self.topology)
        except CommandError as exc:
            return await self._refused(shown, str(exc), id)
        try:
            async with self._applying:
                said = await apply_command(self.mesh, command, load=self.load)
        except Exception as exc:  # noqa: BLE001 - a command the mesh could not carry out is refused, the run goes on
            return await self._refused(command_to_json(command), _reason(exc), id)
        outcome = {"command": command_to_json(command), "said": said, "error": None, "applied_at": self._t()}
        self.commands.append(outcome)
        await self._emit(CommandApplied(t=self._t(), command=outcome["command"], said=said, id=id))
        if self.runtime == "in_process" and isinstance(command, Kill):
            # No process ends in this runtime; say so anyway, as the process runtime would.
            await self._emit(
                ProcessExited(
                    t=self._t(),
                    process=command.target,
                    service=command.service,
                    replica=command.replica,
                    code=None,
                    expected=True,
                )
            )
        return outcome

    async def _refused(self, command: dict, reason: str, id_: str) -> dict:
        outcome = {"command": command, "said": "", "error": reason, "applied_at": None}
        self.commands.append(outcome)
        await self._emit(CommandRefused(t=self._t(), command=command, reason=reason, id=id_))
        return outcome

    # ------------------------------------------------------------------ helpers

    def _t(self) -> float:
        return 0.0 if self._load_started is None else round(time.monotonic() - self._load_started, 3)

    async def _emit(self, event: Event) -> None:
        try:
            outcome = self.on_event(event)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:  # a consumer's bug must not leave a mesh running
            log.exception("on_event failed for %s", event.kind)


async def _cancel(*tasks: asyncio.Task | None) -> None:
    pending = [t for t in tasks if t is not None and not t.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
