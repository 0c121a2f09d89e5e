"""Footprint of mesh experiments on loopback (a plain script, not a test).

    python bench/footprint.py [--quick] [--out bench/footprint-results.md]

Measures in one run, each while two other `pair` experiments (process runtime, light load) run in a
separate background process:
  1. for `pair` and `shop` in both runtimes: start time (the engine's `ready_seconds`, and the wall time
     from `run()` to the Started event), number of processes, total resident memory (sum of VmRSS of the
     experiment's process group, and the sum of PSS, which counts shared pages once), and CPU time
     (utime + stime from /proc/<pid>/stat) per proxied request per sidecar hop under a fixed open-loop load;
  2. 20 idle `pair` experiments in the process runtime, started one after another and all kept running:
     each start time and the total RSS.
The load average is recorded around each measurement. Everything runs on 127.0.0.1; every experiment
has a duration or is stopped here, and the meshes tear themselves down (each is one process group).
Needs nothing beyond the engine and the standard library (Linux /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sandbox.mesh.config.model import Topology  # noqa: E402
from sandbox.mesh.config.topology import load_topology  # noqa: E402
from sandbox.mesh.runtime.events import Event, Finished, Snapshot, Started  # noqa: E402
from sandbox.mesh.runtime.experiment import Experiment  # noqa: E402

TOPOLOGIES = REPO / "sandbox" / "mesh" / "topologies"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
BACKGROUND_READY = "BACKGROUND-READY"
BACKGROUND_RATE = 5.0  # req/s for each background experiment: light, steady load
BACKGROUND_MAX_SECONDS = 900.0  # the background process stops by itself after this, whatever happens here
IDLE_WINDOW = 5.0  # seconds over which the idle experiments' CPU is read
START_BOUND = 60.0  # seconds: an experiment not started by then is reported as such


# ---------------------------------------------------------------------- /proc


def proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(process group, utime + stime in ticks, RSS in bytes), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    # fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15, rss 24
    return int(fields[2]), int(fields[11]) + int(fields[12]), int(fields[21]) * PAGE


def pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def smaps(pid: int) -> tuple[int, dict[str, int]]:
    """(private bytes, {file: shared bytes}) of one process: what only it holds, and what it maps from files
    that other processes may map too (libpython, OpenSSL, cryptography's library)."""
    private, shared = 0, {}
    name = ""
    try:
        with open(f"/proc/{pid}/smaps") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if " " in key or "-" in key:  # a mapping's header: address range, perms, ..., path
                    parts = line.split()
                    name = parts[5] if len(parts) > 5 and parts[5].startswith("/") else ""
                elif key in ("Private_Clean", "Private_Dirty"):
                    private += int(rest.split()[0]) * 1024
                elif key in ("Shared_Clean", "Shared_Dirty"):
                    size = int(rest.split()[0]) * 1024
                    if name:
                        shared[name] = shared.get(name, 0) + size
                    else:
                        private += size  # shared anonymous memory: ours to count
    except OSError:
        pass
    return private, shared


def resident_once(pids: list[int]) -> int:
    """The group's resident memory with each shared file's pages counted once (the most any member maps)."""
    total, files = 0, {}
    for pid in pids:
        private, shared = smaps(pid)
        total += private
        for name, size in shared.items():
            files[name] = max(files.get(name, 0), size)
    return total + sum(files.values())


def component(pid: int) -> str:
    """`sidecar`, `service`, `control_plane` (from `-m sandbox.mesh.<plane>.<kind>`), or `other`."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return "other"
    for arg in argv:
        if arg.startswith(b"sandbox.mesh."):
            return arg.rpartition(b".")[2].decode()
    return "other"


def group_pids(pgid: int) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = proc_stat(int(name))
            if stat is not None and stat[0] == pgid:
                pids.append(int(name))
    return pids


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat (idle and iowait are not busy)."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])  # guest time is already inside user
    return total - idle, total


def busy_since(before: tuple[int, int]) -> float:
    """The fraction of the machine's CPU (all cores) that was busy since `before`, whoever used it."""
    busy, total = machine_cpu()
    return (busy - before[0]) / max(1, total - before[1])


def loadavg() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


@dataclass
class Usage:
    """CPU ticks by component kind, RSS and PSS of a set of processes at one moment."""

    ticks: dict[str, int] = field(default_factory=dict)
    rss: int = 0
    pss: int = 0
    processes: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    once: int = 0  # resident, shared file pages counted once

    @classmethod
    def of(cls, pids: list[int], *, memory: bool = True) -> Usage:
        """CPU and RSS; with `memory`, also PSS and the shared-once total (reading smaps: ~5 ms a process)."""
        usage = cls()
        for pid in pids:
            stat = proc_stat(pid)
            if stat is None:
                continue
            kind = component(pid)
            usage.ticks[kind] = usage.ticks.get(kind, 0) + stat[1]
            usage.kinds[kind] = usage.kinds.get(kind, 0) + 1
            usage.rss += stat[2]
            usage.pss += pss_bytes(pid) if memory else 0
            usage.processes += 1
        usage.once = resident_once(pids) if memory else 0
        return usage


def sidecar_hops(topology: Topology) -> int:
    """Sidecar passes per request sent to the entry when every call succeeds the first time: one at each
    callee's inbound, one at each caller's outbound (each service calls each of its `calls` once)."""

    def passes(name: str, depth: int = 0) -> int:
        svc = topology.service(name)
        total = 1 if svc.sidecar else 0
        for callee in svc.calls:
            total += (1 if svc.sidecar else 0) + (passes(callee, depth + 1) if depth < 20 else 0)
        return total

    return passes(topology.entry)


# ---------------------------------------------------------------------- one measured experiment


class Probe:
    """Watches one experiment's events: when it was ready and, when `measure`, /proc usage at Started and at each
    snapshot of its load (not for the background and idle experiments: reading /proc is work for this process)."""

    def __init__(self, runtime: str, *, measure: bool = False) -> None:
        self.runtime = runtime
        self.measure = measure
        self._pids: list[int] = []
        self.began = time.monotonic()
        self.cpu_at_start = machine_cpu()
        self.busy_during_start = 0.0  # the machine's CPU in use (all cores, any process) while this one started
        self.started: Started | None = None
        self.wall_start = 0.0
        self.first: Usage | None = None
        self.last: Usage | None = None
        self.idle: Usage | None = None
        self.requests = 0
        self.ok = 0
        self.snapshots = 0
        self.finished: Finished | None = None
        self.ready = asyncio.Event()

    def pids(self) -> list[int]:
        if self.runtime == "in_process":
            return [os.getpid()]
        if not self._pids and self.started and self.started.pgid:
            self._pids = group_pids(self.started.pgid)  # read once: no process comes or goes while we measure
        return self._pids

    def on_event(self, event: Event) -> None:
        if isinstance(event, Started):
            self.started = event
            self.wall_start = time.monotonic() - self.began
            self.busy_during_start = busy_since(self.cpu_at_start)
            if self.measure:
                self.idle = Usage.of(self.pids())
            self.ready.set()
        elif isinstance(event, Snapshot) and self.measure:
            self.snapshots += 1
            usage = Usage.of(self.pids(), memory=False)
            if self.first is None:
                self.first = usage  # the window starts after the first full second of load
            else:
                self.last = usage
                self.requests += event.requests
                self.ok += event.statuses.get("200", 0)
        elif isinstance(event, Finished):
            self.finished = event
            self.ready.set()


async def measure(name: str, runtime: str, *, rate: float, seconds: float) -> dict:
    topology = load_topology(TOPOLOGIES / f"{name}.yaml")
    base_ticks = proc_stat(os.getpid())[1]
    probe = Probe(runtime, measure=True)
    load_before = loadavg()
    experiment = Experiment(
        topology, runtime=runtime, rate=rate, on_event=probe.on_event, topology_path=str(TOPOLOGIES / f"{name}.yaml")
    )
    finished = await asyncio.wait_for(experiment.run(duration=seconds), START_BOUND + seconds + 30)
    row = {
        "topology": name,
        "runtime": runtime,
        "rate": rate,
        "seconds": seconds,
        "load_before": load_before,
        "load_after": loadavg(),
        "reason": finished.reason,
        "hops": sidecar_hops(topology),
    }
    if probe.started is None:
        return row
    idle = probe.idle
    row.update(
        ready=probe.started.ready_seconds,
        wall_start=probe.wall_start,
        busy=probe.busy_during_start,
        requests=probe.requests,
        ok=probe.ok,
        processes=idle.processes if runtime == "process" else 1,
        kinds=idle.kinds,
        rss=idle.rss,
        pss=idle.pss,
        once=idle.once,
    )
    row["harness_ticks"] = proc_stat(os.getpid())[1] - base_ticks
    if probe.first and probe.last and probe.requests:
        delta = {kind: probe.last.ticks.get(kind, 0) - ticks for kind, ticks in probe.first.ticks.items()}
        row["cpu_ms"] = {kind: ticks * 1000 / TICK for kind, ticks in delta.items()}
        row["cpu_ms_total"] = sum(delta.values()) * 1000 / TICK
        row["cpu_per_request_ms"] = row["cpu_ms_total"] / probe.requests
        row["cpu_per_hop_ms"] = row["cpu_per_request_ms"] / row["hops"]
        sidecar_ms = row["cpu_ms"].get("sidecar")
        if sidecar_ms is not None:
            row["sidecar_per_hop_ms"] = sidecar_ms / probe.requests / row["hops"]
        row["rss_loaded"] = probe.last.rss
    return row


async def start_times(name: str, runtime: str, count: int) -> list[tuple[float, float]]:
    """Start and stop the same experiment `count` times (no load): the wall time from `run()` to Started, and
    how busy the machine's CPU was meanwhile."""
    topology = load_topology(TOPOLOGIES / f"{name}.yaml")
    times = []
    for _ in range(count):
        probe = Probe(runtime)
        experiment = Experiment(
            topology, runtime=runtime, rate=0.0, on_event=probe.on_event, topology_path=str(TOPOLOGIES / f"{name}.yaml")
        )
        await asyncio.wait_for(experiment.run(duration=0.0), START_BOUND + 30)
        if probe.started is not None:
            times.append((probe.wall_start, probe.busy_during_start))
        await asyncio.sleep(1.0)  # the previous mesh's processes are gone before the next start
    return times


# ---------------------------------------------------------------------- background experiments


async def background(count: int, rate: float, max_seconds: float) -> None:
    """Run `count` pair experiments (process runtime) until SIGTERM, stdin closing or `max_seconds`."""
    topology_path = TOPOLOGIES / "pair.yaml"
    topology = load_topology(topology_path)
    probes = [Probe("process") for _ in range(count)]
    experiments = [
        Experiment(topology, runtime="process", rate=rate, on_event=p.on_event, topology_path=str(topology_path))
        for p in probes
    ]
    runs = [asyncio.create_task(e.run(duration=max_seconds)) for e in experiments]
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(0, lambda: os.read(0, 1) or stop.set())  # the parent's end of the pipe closed: stop
    await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in probes)), START_BOUND)
    print(
        BACKGROUND_READY,
        " ".join(f"{p.started.ready_seconds:.2f}" if p.started else "failed" for p in probes),
        flush=True,
    )
    await asyncio.wait([asyncio.create_task(stop.wait()), *runs], return_when=asyncio.FIRST_COMPLETED)
    for experiment in experiments:
        experiment.stop("background done")
    await asyncio.gather(*runs, return_exceptions=True)


class Background:
    """The two background experiments, in a process of their own so their supervisor and load generator
    do not count in what this process measures."""

    def __init__(self, count: int = 2) -> None:
        self.count = count
        self.process: subprocess.Popen | None = None
        self.ready_line = ""

    def __enter__(self) -> Background:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--background", str(self.count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(REPO),
        )
        for line in self.process.stdout:
            if line.startswith(BACKGROUND_READY):
                self.ready_line = line.split(None, 1)[1].strip()
                break
        else:
            raise RuntimeError("the background experiments did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()  # its meshes die with it (PR_SET_PDEATHSIG)
            self.process.wait()


# ---------------------------------------------------------------------- many idle experiments


async def many_idle(count: int) -> dict:
    """Start `count` idle pair experiments one after another (each ready before the next starts), keep them all
    running, then read the total RSS of every mesh and stop them all."""
    topology_path = TOPOLOGIES / "pair.yaml"
    topology = load_topology(topology_path)
    probes: list[Probe] = []
    experiments: list[Experiment] = []
    runs: list[asyncio.Task] = []
    starts: list[dict] = []
    try:
        for index in range(count):
            probe = Probe("process")
            # rate 0: one request at the start, then none (the load generator's floor is one per 1000 s); no
            # duration, so the load never ends by itself: each is stopped below, after the memory is read
            experiment = Experiment(
                topology, runtime="process", rate=0.0, on_event=probe.on_event, topology_path=str(topology_path)
            )
            probes.append(probe)
            experiments.append(experiment)
            runs.append(asyncio.create_task(experiment.run(duration=None)))
            await asyncio.wait_for(probe.ready.wait(), START_BOUND)
            if probe.started is None:
                starts.append({"index": index + 1, "failed": probe.finished.reason if probe.finished else "?"})
                break
            starts.append(
                {
                    "index": index + 1,
                    "ready": probe.started.ready_seconds,
                    "wall": probe.wall_start,
                    "load": loadavg(),
                    "busy": probe.busy_during_start,
                }
            )
            print(
                f"  idle pair {index + 1}: ready {probe.started.ready_seconds:.2f} s, "
                f"run() -> Started {probe.wall_start:.2f} s, load {loadavg()}",
                flush=True,
            )
        await asyncio.sleep(3)  # let every mesh settle (certificates, first pushes) before reading memory
        pids = [pid for p in probes for pid in p.pids()]
        usage = Usage.of(pids)
        own = proc_stat(os.getpid())
        await asyncio.sleep(IDLE_WINDOW)
        later, own_later = Usage.of(pids, memory=False), proc_stat(os.getpid())
        idle_ms = sum(later.ticks.values()) - sum(usage.ticks.values())
        return {
            "starts": starts,
            "processes": usage.processes,
            "rss": usage.rss,
            "pss": usage.pss,
            "once": usage.once,
            "supervisor_rss": own[2],
            "load": loadavg(),
            "idle_cpu_ms": idle_ms * 1000 / TICK,
            "supervisor_cpu_ms": (own_later[1] - own[1]) * 1000 / TICK,
        }
    finally:
        for experiment in experiments:
            experiment.stop("footprint done")
        await asyncio.gather(*runs, return_exceptions=True)


# ---------------------------------------------------------------------- report


def mb(value: int) -> str:
    return f"{value / 1e6:.0f} MB"


def report(rows: list[dict], starts: dict, idle: dict | None, background_line: str, args: argparse.Namespace) -> str:
    lines = [
        "# Mesh experiment footprint",
        "",
        f"Written by `python bench/footprint.py{' --quick' if args.quick else ''}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, event loop {os.environ.get('MESH_EVENT_LOOP', 'asyncio')}. "
        "Raw numbers from this one run.",
        "",
        f"Background while measuring: 2 `pair` experiments (process runtime, {BACKGROUND_RATE:g} req/s each) in "
        f"a separate process, ready in {background_line} s.",
        "",
        "## Per experiment",
        "",
        f"Load: open loop at {args.rate:g} req/s for {args.seconds:g} s; CPU over the snapshots after the first "
        "second of load (every process of the experiment; in the in-process runtime the one process that also "
        "runs the load generator and the observer). A hop is one pass through a sidecar (pair: 3 per request, "
        "shop: 7). Memory: sum of VmRSS of the experiment's process group when it was ready; PSS splits each shared "
        "page among every process mapping it (here also the background experiments' and the harness's); 'shared "
        "once' is the group's private pages plus each shared file's pages counted once (what it would hold alone); "
        "in-process: the RSS of this harness, the one process (it also ran the experiments before it).",
        "",
        "| Topology | Runtime | Processes | Ready (engine) | run() -> Started (machine CPU busy) | RSS total | PSS total | RSS, shared once | "
        "CPU / request, all processes (per hop) | Sidecar CPU / request / hop | Requests (200) | Load avg before -> after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if "ready" not in row:
            lines.append(f"| {row['topology']} | {row['runtime']} | did not start: {row['reason']} |" + " |" * 9)
            continue
        rss = mb(row["rss"])
        per_hop = f"{row['sidecar_per_hop_ms']:.3f} ms" if "sidecar_per_hop_ms" in row else "-"
        per_req = (
            f"{row['cpu_per_request_ms']:.2f} ms ({row['cpu_per_hop_ms']:.2f} ms)"
            if "cpu_per_request_ms" in row
            else "-"
        )
        lines.append(
            f"| {row['topology']} | {row['runtime']} | {row['processes']} | {row['ready']:.2f} s | "
            f"{row['wall_start']:.2f} s ({row['busy']:.0%}) | {rss} | {mb(row['pss'])} | {mb(row['once'])} | {per_req} | {per_hop} | "
            f"{row.get('requests', 0)} ({row.get('ok', 0)}) | {row['load_before']} -> {row['load_after']} |"
        )
    if starts:
        lines += [
            "",
            f"Start time, {args.starts} starts each (wall time from `run()` to Started, no load; "
            "the same background; in brackets the machine's CPU busy meanwhile, both cores, every process):",
            "",
        ]
        for (name, runtime), times in starts.items():
            shown = ", ".join(f"{t:.2f} ({busy:.0%})" for t, busy in times)
            median = statistics.median(t for t, _ in times) if times else float("nan")
            lines.append(f"- {name} / {runtime}: {shown} s (median {median:.2f} s)")
    lines += ["", "CPU by component during the window (ms) and processes by kind:", ""]
    for row in rows:
        if "cpu_ms" in row:
            parts = ", ".join(f"{k} {v:.0f}" for k, v in sorted(row["cpu_ms"].items()))
            lines.append(f"- {row['topology']} / {row['runtime']}: {parts}; processes {row['kinds']}")
    if idle is not None:
        starts = idle["starts"]
        ok = [s for s in starts if "ready" in s]
        worst = max((s["wall"] for s in ok), default=0.0)
        lines += [
            "",
            f"## {args.idle} idle `pair` experiments at once (process runtime)",
            "",
            "Started one after another, each ready before the next, all kept running (plus the 2 background "
            "experiments). Each row: the engine's ready time, the wall time from `run()` to Started, the "
            "machine's CPU busy meanwhile (both cores, every process), the load average then.",
            "",
            "| # | Ready (engine) | run() -> Started | Machine CPU busy | Load avg |",
            "| --- | --- | --- | --- | --- |",
        ]
        for s in starts:
            if "ready" in s:
                lines.append(
                    f"| {s['index']} | {s['ready']:.2f} s | {s['wall']:.2f} s | {s['busy']:.0%} | {s['load']} |"
                )
            else:
                lines.append(f"| {s['index']} | failed: {s['failed']} | | | |")
        lines += [
            "",
            f"All {len(ok)} running: {idle['processes']} processes, RSS total {mb(idle['rss'])} "
            f"({mb(idle['rss'] // max(1, len(ok)))} per experiment), PSS total {mb(idle['pss'])}, shared pages counted "
            f"once {mb(idle['once'])}; the supervising "
            f"process (this harness) {mb(idle['supervisor_rss'])}. Slowest start {worst:.2f} s. "
            f"Load average at the end: {idle['load']}.",
            "",
            f"CPU while idle, over {IDLE_WINDOW:g} s: the {len(ok)} meshes together "
            f"{idle['idle_cpu_ms'] / IDLE_WINDOW / 10:.1f}% of one core "
            f"({idle['idle_cpu_ms'] / IDLE_WINDOW / max(1, len(ok)):.1f} ms per experiment per second: heartbeats, "
            f"the observer's once-a-second reads of each sidecar); the supervising process (observer and event loop "
            f"of all {len(ok)}) {idle['supervisor_cpu_ms'] / IDLE_WINDOW / 10:.1f}%.",
        ]
    return "\n".join(lines) + "\n"


async def main(args: argparse.Namespace) -> None:
    rows = []
    with Background(2) as bg:
        print(f"background pair x2 ready in {bg.ready_line} s; load {loadavg()}", flush=True)
        for name in ("pair", "shop"):
            for runtime in ("process", "in_process"):
                row = await measure(name, runtime, rate=args.rate, seconds=args.seconds)
                print(f"{name}/{runtime}: " + ", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
                rows.append(row)
        starts = {}
        for name in ("pair", "shop"):
            for runtime in ("process", "in_process"):
                starts[name, runtime] = await start_times(name, runtime, args.starts)
                print(f"{name}/{runtime} starts: {starts[name, runtime]}", flush=True)
        idle = await many_idle(args.idle) if args.idle else None
    text = report(rows, starts, idle, bg.ready_line, args)
    Path(args.out).write_text(text)
    print(text)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter load and 5 idle experiments")
    parser.add_argument("--rate", type=float, default=50.0, help="req/s during the CPU window")
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration per measured experiment")
    parser.add_argument("--starts", type=int, default=5, help="start-only repeats per experiment and runtime")
    parser.add_argument("--idle", type=int, default=20, help="idle pair experiments to hold at once (0: skip)")
    parser.add_argument("--out", default=str(REPO / "bench" / "footprint-results.md"))
    parser.add_argument("--background", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 5.0)
        args.idle = min(args.idle, 5)
        args.starts = min(args.starts, 2)
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.background:
        asyncio.run(background(arguments.background, BACKGROUND_RATE, BACKGROUND_MAX_SECONDS))
    else:
        asyncio.run(main(arguments))
