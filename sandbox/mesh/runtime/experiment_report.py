"""What an experiment reports besides its snapshots: process exits, NACKed pushes, the scenario's steps (applied or not reached) and the final result. A part of Experiment (experiment.py)."""

from __future__ import annotations

import asyncio
import time

from sandbox.mesh.runtime.events import (
    ConfigNacked,
    ProcessExited,
)
from sandbox.mesh.runtime.loadgen import summarize
from sandbox.mesh.runtime.observe import Observer


class ExperimentReport:
    async def _report_exits(self) -> None:
        exits = getattr(self.mesh, "exits", [])
        for exit_ in exits[self._seen_exits :]:
            await self._emit(
                ProcessExited(
                    t=self._t(),
                    process=exit_["kind"],
                    service=exit_["service"],
                    replica=exit_["replica"],
                    code=exit_["code"],
                    expected=exit_["expected"],
                    pid=exit_.get("pid"),
                )
            )
        self._seen_exits = len(exits)

    async def _report_nacks(self) -> None:
        status = await self._status()
        for sidecar in (status or {}).get("sidecars", []):
            nack = sidecar.get("nack")
            if not nack:
                continue
            key = (sidecar["service"], sidecar["replica"], nack.get("version"))
            if key in self._seen_nacks:
                continue
            self._seen_nacks.add(key)
            await self._emit(
                ConfigNacked(
                    t=self._t(),
                    service=sidecar["service"],
                    replica=sidecar["replica"],
                    version=nack.get("version") or 0,
                    serving_version=sidecar.get("acked_version", 0),
                    reason=nack.get("reason", ""),
                )
            )

    async def _run_scenario(self) -> None:
        """Apply each step at its time after the load started, from this task's own monotonic schedule."""
        for index, step in enumerate(self.scenario.steps):
            delay = self._load_started + step.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            began = self._t()
            outcome = await self.apply({"action": step.action, **step.args}, id=f"scenario:{index}")
            # applied_at: when the step began (its schedule); done_at: when the mesh had carried it out.
            self.steps.append(
                {
                    "at": step.at,
                    "action": step.action,
                    "did": outcome["said"] or step.describe(),
                    "error": outcome["error"],
                    "applied_at": began,
                    "done_at": self._t(),
                }
            )

    def _steps_not_reached(self, duration: float | None) -> None:
        if self.scenario is None:
            return
        until = f"the end of the run at {duration:g}s" if duration is not None else "the run was stopped"
        for step in self.scenario.steps[len(self.steps) :]:
            self.steps.append(
                {
                    "at": step.at,
                    "action": step.action,
                    "did": step.describe(),
                    "error": f"not applied: {until}",
                    "applied_at": None,
                    "done_at": None,
                }
            )

    async def _result(self, duration: float | None, samples: list, per_second: list[dict], observer: Observer) -> dict:
        actual = {}
        for name, counts in observer.actual.items():
            actual[name] = {**counts, "success_rate": counts["ok"] / counts["requests"] if counts["requests"] else None}
        return {
            "topology": self.topology.name,
            "duration": duration,
            "rate": self.rate,
            "start_seconds": self.mesh.ready_seconds,
            "summary": summarize(samples),
            "per_second": per_second,
            "actual": actual,
            "sidecars": observer.totals,
            "scenario": self.steps,
            "commands": self.commands,
            "control_plane": await self._status() or {"error": "control plane unreachable"},
        }
