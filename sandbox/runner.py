"""Runs one experiment inside a Celery task: the engine in an asyncio loop on the task's own thread, the
learner's commands read from Redis, the engine's events written back to Redis and the record kept in the
database.

Everything that spawns a process (the engine) runs on the loop's thread: PR_SET_PDEATHSIG follows the
thread that forked, so the mesh dies with this thread. Database calls go to a helper thread (the ORM is
synchronous); they never spawn anything.
"""

import asyncio
import logging
import signal
import time
from dataclasses import asdict
from pathlib import Path

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from redis.exceptions import RedisError

from sandbox.mesh.config.topology import shipped_topology_path
from sandbox.mesh.runtime.events import Event, Finished, Snapshot, Started
from sandbox.mesh.runtime.experiment import Experiment as EngineExperiment

from . import records, selectors, streams
from .models import Experiment

log = logging.getLogger(__name__)

SHUTDOWN_REASON = "stopped: the site shut down"
HISTORY_KEPT = 600  # metrics points kept in the final record (ten minutes at one a second)
REFUSALS_RECORDED = 20  # forged command entries recorded as events per experiment; the log counts the rest


def _db(function):
    return sync_to_async(function, thread_sensitive=True)


class ExperimentRunner:
    def __init__(self, experiment: Experiment) -> None:
        self.record = experiment
        self.id = experiment.pk
        self.redis = streams.async_client()
        self.engine: EngineExperiment | None = None
        self.started = asyncio.Event()
        self.finished_recorded = False
        self.history: list[dict] = []
        self.last_snapshot: dict | None = None
        self.begun = time.monotonic()
        self.last_activity = time.monotonic()
        self.refused = 0  # command entries refused because the site did not sign them

    async def run(self) -> str:
        """Run to the end; returns the reason it ended."""
        topology = selectors.topology_get(self.record.topology)
        log_dir = Path(settings.VAR_DIR) / "sandbox" / str(self.id)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.engine = EngineExperiment(
            topology,
            runtime=self.record.runtime,
            topology_path=str(shipped_topology_path(self.record.topology)),
            rate=settings.SANDBOX_RATE,
            on_event=self.on_event,
            log_dir=str(log_dir),
        )
        helpers = [asyncio.create_task(self.read_commands()), asyncio.create_task(self.watch())]
        handled = self.stop_on_shutdown_signals()
        reason = "failed: the experiment ended without saying why"
        try:
            finished = await self.engine.run(duration=None)
            reason = finished.reason
            if not self.finished_recorded:  # the engine returned without emitting Finished
                await self.record_finish(finished)
        except Exception as exc:  # the engine promises not to raise; if it does, the record must still end
            log.exception("experiment %s crashed", self.id)
            reason = f"failed: {exc}"
            if not self.finished_recorded:
                await self.record_finish(Finished(reason=reason))
        finally:
            for signum in handled:
                asyncio.get_running_loop().remove_signal_handler(signum)
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self.redis.aclose()
            await _db(lambda: connection.close())()  # the helper thread's own connection
        return reason

    def stop_on_shutdown_signals(self) -> list[int]:
        """Ctrl-C or a SIGTERM to the worker's pool process (bin/run stopping) ends the experiment cleanly:
        the mesh is torn down and the record says so, instead of waiting for the janitor."""
        loop = asyncio.get_running_loop()
        handled = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, self.engine.stop, SHUTDOWN_REASON)
            except (ValueError, RuntimeError, NotImplementedError):
                break  # not the main thread (a thread pool, the tests' in-process worker): nothing to catch
            handled.append(signum)
        return handled

    # ------------------------------------------------------------------ engine -> Redis and database

    async def on_event(self, event: Event) -> None:
        if isinstance(event, Finished):
            # The record first: a page that reloads on "finished" must find the experiment ended.
            await self.record_finish(event)
        elif isinstance(event, Snapshot):
            self.history.append(event.one_second())
            del self.history[:-HISTORY_KEPT]
            self.last_snapshot = asdict(event)
        else:
            if isinstance(event, Started):
                await _db(records.experiment_mark_running)(experiment_id=self.id, pgid=event.pgid)
                self.started.set()
            await _db(records.experiment_event_record)(
                experiment_id=self.id, kind=event.kind, t=event.t, data=asdict(event)
            )
        await self.redis.xadd(
            streams.events_key(self.id),
            {"event": event.to_json()},
            maxlen=settings.SANDBOX_STREAM_MAXLEN,
            approximate=True,
        )

    async def record_finish(self, finished: Finished) -> None:
        await _db(records.experiment_event_record)(
            experiment_id=self.id, kind=finished.kind, t=finished.t, data={"reason": finished.reason}
        )
        result = {"engine": finished.result, "history": self.history, "last_snapshot": self.last_snapshot}
        await _db(records.experiment_finish)(experiment_id=self.id, reason=finished.reason, result=result)
        self.finished_recorded = True

    # ------------------------------------------------------------------ Redis -> engine

    async def read_commands(self) -> None:
        """Hand the learner's commands to the engine in the order they were sent. Commands sent before the
        mesh was up wait for it; a stop is obeyed at once. Only what the site signed for this experiment is
        obeyed, each command once: anything else on the stream was written by someone else and is refused."""
        key = streams.commands_key(self.id)
        last_id = "0-0"
        seen: set[str] = set()
        while True:
            try:
                reply = await self.redis.xread({key: last_id}, block=1000, count=50)
            except (RedisError, OSError):
                # Redis went away for a moment: the stream keeps the commands, so read on from where we were.
                log.warning("experiment %s: reading commands failed; retrying", self.id, exc_info=True)
                await asyncio.sleep(1)
                continue
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    last_id = entry_id
                    try:
                        command_id, command = streams.decode_command(fields, experiment_id=self.id)
                    except streams.CommandNotSigned:
                        await self.refuse_entry(entry_id, fields, "the site did not sign it")
                        continue
                    except ValueError:
                        log.warning("experiment %s: unreadable command entry %s", self.id, entry_id)
                        continue
                    if command.get("action") == streams.STOP:
                        self.engine.stop("stopped")  # a second stop changes nothing
                        continue
                    if command_id in seen:
                        await self.refuse_entry(entry_id, fields, "it repeats a command already applied")
                        continue
                    seen.add(command_id)
                    # Only a command from the site counts as the learner's activity.
                    self.last_activity = time.monotonic()
                    await self.started.wait()
                    self.engine.submit(command, id=command_id)

    async def refuse_entry(self, entry_id, fields: dict, why: str) -> None:
        """A command the site did not send: never applied, and recorded where the operator looks (the log and
        the experiment's events in the admin). Past the first few, the log alone keeps count, so a flood of
        forged entries cannot fill the database."""
        self.refused += 1
        entry = streams.entry_text(entry_id)
        log.warning("experiment %s: refused command entry %s from outside the site: %s", self.id, entry, why)
        if self.refused > REFUSALS_RECORDED:
            return
        reason = f"a command that did not come from this site ({why}); nothing was changed"
        data = {"reason": reason, "entry": entry, "fields": streams.entry_summary(fields)}
        # No "id" in the record: a forged id must not rewrite the outcome of one of the learner's commands.
        await _db(records.experiment_event_record)(
            experiment_id=self.id, kind="refused", t=time.monotonic() - self.begun, data=data
        )

    async def watch(self) -> None:
        """Heartbeat, and the experiment's own deadlines: idle (no page open, no command) and lifetime."""
        last_beat = 0.0
        while True:
            await asyncio.sleep(1)
            now = time.monotonic()
            if now - last_beat >= settings.SANDBOX_HEARTBEAT_INTERVAL:
                last_beat = now
                if not await _db(records.experiment_heartbeat)(experiment_id=self.id):
                    # The janitor declared us lost (a long stall); the record is closed, so stop the mesh.
                    self.engine.stop("failed: worker lost")
                    return
            try:
                watched = await self.redis.exists(streams.viewer_key(self.id))
            except (RedisError, OSError):
                watched = True  # unknown: a Redis hiccup must not end a learner's experiment as idle
            if watched:
                self.last_activity = now
            if now - self.last_activity > settings.SANDBOX_IDLE_TIMEOUT:
                self.engine.stop("idle")
                return
            if now - self.begun > settings.SANDBOX_LIFETIME:
                self.engine.stop("deadline")
                return
