"""Command line: `python -m sandbox.mesh run <topology.yaml> [--scenario f] [--duration N] [--rate R] [--json out]`
and `python -m sandbox.mesh analyze <topology.yaml>`."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from sandbox.mesh.config.schema import SchemaError
from sandbox.mesh.controlplane.meshconfig import to_jsonable
from sandbox.mesh.runtime.events import (
    CommandApplied,
    CommandRefused,
    ConfigNacked,
    Event,
    Finding,
    Finished,
    ProcessExited,
    Snapshot,
    Started,
)


def _fmt_rate(value: float | None) -> str:
    return "  -   " if value is None else f"{value * 100:5.1f}%"


class Printer:
    """Prints an experiment's events as the command line always has: one line per event, one per second."""

    def __init__(self, scenario=None) -> None:
        self.steps = list(scenario.steps) if scenario is not None else []

    def __call__(self, event: Event) -> None:
        line = self.line(event)
        if line is not None:
            print(line, flush=True)

    def line(self, event: Event) -> str | None:
        if isinstance(event, Started):
            return (
                f"mesh {event.topology!r} up in {event.ready_seconds:.2f}s; control plane {event.control_socket}; "
                f"entry {event.edges[0][1]} on {event.entry_ports}"
                + (f"; process group {event.pgid}" if event.pgid else "")
            )
        if isinstance(event, Finding):
            return f"  finding {event.code} [{event.severity}] {event.subject}: {event.message}"
        if isinstance(event, CommandApplied | CommandRefused):
            said = event.said if isinstance(event, CommandApplied) else event.reason
            if event.id.startswith("scenario:"):
                step = self.steps[int(event.id.split(":", 1)[1])]
                said = step.describe() if isinstance(event, CommandApplied) else said
            elif isinstance(event, CommandRefused):
                said = f"refused: {said}"
            return f"  [{event.t:5.1f}s] action: {said}"
        if isinstance(event, ProcessExited):
            how = "killed on purpose" if event.expected else "exited unexpectedly"
            pid = f" (pid {event.pid})" if event.pid is not None else ""
            return f"  process {event.process} {event.service}-{event.replica}{pid} {how}, code {event.code}"
        if isinstance(event, ConfigNacked):
            return (
                f"  NACK from {event.service}-{event.replica} for version {event.version} "
                f"(still serving version {event.serving_version}): {event.reason}"
            )
        if isinstance(event, Snapshot):
            totals = event.totals
            return (
                f"t={event.t:5.1f}s rps={event.requests:5d} effective={_fmt_rate(event.effective_success)} "
                f"actual={_fmt_rate(event.actual_success)} p50={event.p50_ms:7.2f}ms "
                f"p95={event.p95_ms:7.2f}ms p99={event.p99_ms:7.2f}ms retries={totals.get('retries', 0)} "
                f"ejections={totals.get('ejections', 0)} tls_failures={totals.get('tls_failures', 0)} "
                f"open_circuits={totals.get('open_circuits', 0)} statuses={event.statuses}"
            )
        if isinstance(event, Finished) and event.reason == "completed":
            result = event.result
            overall = result["summary"]
            return (
                f"done: {overall['requests']} requests, effective success {_fmt_rate(overall['success_rate'])}, "
                f"p50 {overall['p50_ms']:.2f} ms, p99 {overall['p99_ms']:.2f} ms; actual success per service: "
                + ", ".join(f"{n} {_fmt_rate(c['success_rate'])}" for n, c in result["actual"].items())
            )
        return None


async def run(args: argparse.Namespace) -> int:
    from sandbox.mesh.config.topology import SchemaError, load_topology
    from sandbox.mesh.controlplane.analyze import check_runnable
    from sandbox.mesh.runtime.experiment import Experiment
    from sandbox.mesh.runtime.scenario import ScenarioError, load_scenario

    try:
        topology = load_topology(args.topology)
        check_runnable(topology)  # a call cycle or a dead route is refused before any process starts
        scenario = load_scenario(args.scenario, topology) if args.scenario else None
    except (SchemaError, ScenarioError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    experiment = Experiment(
        topology,
        runtime="in_process" if args.in_process else "process",
        topology_path=args.topology,
        rate=args.rate,
        on_event=Printer(scenario),
        log_dir=args.logs,
        scenario=scenario,
        load_timeout=args.timeout,
    )
    # SIGTERM / SIGINT ask the experiment to stop, so the mesh is torn down in order.
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, experiment.stop)
    finished = await experiment.run(duration=args.duration)
    if finished.reason == "stopped":
        print("stopped; mesh torn down", flush=True)
        return 130
    if finished.reason != "completed":
        print(f"error: {finished.reason}", file=sys.stderr, flush=True)
        return 1
    if args.json:
        Path(args.json).write_text(json.dumps(finished.result, indent=2, default=str))  # small: no thread needed
        print(f"wrote {args.json}")
    return 0


def analyze_command(args: argparse.Namespace) -> int:
    from sandbox.mesh.config.topology import load_topology
    from sandbox.mesh.controlplane.analyze import analyze

    findings = analyze(load_topology(args.topology))
    for finding in findings:
        f = to_jsonable(finding)
        print(f"{f.get('code')} [{f.get('severity')}] {f.get('subject')}: {f.get('message')}")
    if not findings:
        print("no findings")
    return 1 if any(str(to_jsonable(f).get("severity", "")).lower() == "error" for f in findings) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.mesh", description="Run or check a MeshLearn mesh.")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="start the mesh, send load, apply a scenario, report")
    run_p.add_argument("topology")
    run_p.add_argument("--scenario")
    run_p.add_argument("--duration", type=float, default=10.0)
    run_p.add_argument("--rate", type=float, default=100.0, help="requests per second (open loop)")
    run_p.add_argument("--timeout", type=float, default=10.0, help="seconds before the load generator gives up")
    run_p.add_argument("--json", help="write the result here")
    run_p.add_argument("--in-process", action="store_true", help="all components in this process (no real exits)")
    run_p.add_argument("--logs", help="keep the components' stderr in this directory")
    an_p = sub.add_parser("analyze", help="list configuration findings")
    an_p.add_argument("topology")
    args = parser.parse_args(argv)
    try:
        if args.command == "analyze":
            return analyze_command(args)
        return asyncio.run(run(args))
    except SchemaError as exc:
        # A bad topology or scenario file: one line with the field path and the reason, no traceback.
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("stopped", flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
