"""Command line: `python -m sandbox.mesh run <topology.yaml> [--scenario f] [--duration N] [--rate R] [--json out]`
and `python -m sandbox.mesh analyze <topology.yaml>`."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

from sandbox.mesh.loadgen import LoadGenerator, Window, summarize
from sandbox.mesh.meshconfig import to_jsonable


async def _sidecar_totals(mesh) -> dict:
    """Retries, ejections, breaker overflows and TLS failures summed over every sidecar."""
    totals = {"retries": 0, "ejections": 0, "tls_failures": 0, "uo": 0, "by_flag": {}, "tls_reasons": {}, "open_circuits": 0}
    for (service, replica), rep in list(mesh.replicas.items()):
        if not rep.sidecar:
            continue
        try:
            data = json.loads((await mesh.sidecar_admin(service, replica, "/stats")).body)
        except Exception:
            continue
        for dest in data.get("destinations", {}).values():
            totals["retries"] += dest.get("retries", 0)
            totals["ejections"] += dest.get("ejections", 0)
            totals["open_circuits"] += dest.get("circuit") == "open"
        for flag, count in data.get("by_flag", {}).items():
            totals["by_flag"][flag] = totals["by_flag"].get(flag, 0) + count
        for reason, count in data.get("tls_failures", {}).items():
            totals["tls_reasons"][reason] = totals["tls_reasons"].get(reason, 0) + count
            totals["tls_failures"] += count
    totals["uo"] = totals["by_flag"].get("UO", 0)
    return totals


async def _actual_success(mesh) -> dict[str, dict]:
    """Per called service: how many requests its replicas answered and how many with 2xx."""
    result = {}
    for svc in mesh.topology.services:
        ok = total = 0
        for stats in await mesh.service_stats(svc.name):
            for status, count in stats.get("by_status", {}).items():
                total += count
                ok += count if 200 <= int(status) < 300 else 0
        result[svc.name] = {"requests": total, "ok": ok}
    return result


def _fmt_rate(value: float | None) -> str:
    return "  -   " if value is None else f"{value * 100:5.1f}%"


async def run(args: argparse.Namespace) -> int:
    from sandbox.mesh.scenario import load_scenario, run_scenario
    from sandbox.mesh.supervisor import InProcessMesh, ProcessMesh
    from sandbox.mesh.topology import load_topology

    topology = load_topology(args.topology)
    scenario = load_scenario(args.scenario) if args.scenario else None
    # SIGTERM / SIGINT set an event the run checks, so the mesh is torn down in order. (Cancelling
    # the main task instead can be swallowed by an asyncio.wait_for finishing at the same moment.)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    mesh = InProcessMesh(topology) if args.in_process else ProcessMesh(topology, args.topology, log_dir=args.logs)
    load = load_task = scenario_task = None
    try:
        if not await _unless_stopped(mesh.start(), stop):
            return 130
        print(f"mesh {topology.name!r} up in {mesh.ready_seconds:.2f}s; control plane :{mesh.control_port}; "
              f"entry {topology.entry} on {mesh.entry_ports()}"
              + (f"; process group {mesh.pgid}" if getattr(mesh, "pgid", None) else ""), flush=True)
        for finding in (await mesh.status())["findings"]:
            print(f"  finding {finding.get('code')} [{finding.get('severity')}] {finding.get('subject')}: "
                  f"{finding.get('message')}", flush=True)
        load = LoadGenerator("127.0.0.1", mesh.entry_ports(), rate=args.rate, host_header=topology.entry,
                             ssl_context=await mesh.entry_ssl_context(), timeout=args.timeout)
        started = time.monotonic()

        def set_rate(rps: float) -> None:
            load.rate = rps

        def on_step(step, text) -> None:
            print(f"  [{time.monotonic() - started:5.1f}s] action: {text}", flush=True)

        steps: list[dict] = []
        scenario_task = asyncio.create_task(
            run_scenario(mesh, scenario, started=started, set_rate=set_rate, on_step=on_step, done=steps)
        ) if scenario else None
        load_task = asyncio.create_task(load.run(args.duration))
        per_second = []
        seen = 0
        seen_nacks: set = set()
        seen_exits = 0
        base_actual = await _actual_success(mesh)
        prev_actual = base_actual
        stop_waiter = asyncio.create_task(stop.wait())
        while not load_task.done() and not stop.is_set():
            await asyncio.wait({load_task, stop_waiter}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            window = Window()
            for sample in load.samples[seen:]:
                window.add(sample)
            seen = len(load.samples)
            actual = await _actual_success(mesh)
            totals = await _sidecar_totals(mesh)
            called = [s.name for s in topology.services if s.name != topology.entry] or [topology.entry]
            d_total = sum(actual[n]["requests"] - prev_actual[n]["requests"] for n in called)
            d_ok = sum(actual[n]["ok"] - prev_actual[n]["ok"] for n in called)
            prev_actual = actual
            summary = window.summary()
            row = {"t": round(time.monotonic() - started, 1), **summary,
                   "actual_success_rate": (d_ok / d_total) if d_total else None,
                   "retries": totals["retries"], "ejections": totals["ejections"],
                   "tls_failures": totals["tls_failures"], "open_circuits": totals["open_circuits"],
                   "in_flight": load.in_flight}
            per_second.append(row)
            for event in getattr(mesh, "exits", [])[seen_exits:]:
                how = "killed on purpose" if event["expected"] else "exited unexpectedly"
                print(f"  process {event['kind']} {event['service']}-{event['replica']} (pid {event['pid']}) {how}, "
                      f"code {event['code']}", flush=True)
            seen_exits = len(getattr(mesh, "exits", []))
            for sidecar in (await mesh.status())["sidecars"]:
                nack = sidecar["nack"]
                key = (sidecar["service"], sidecar["replica"], nack and nack["version"])
                if nack and key not in seen_nacks:
                    seen_nacks.add(key)
                    print(f"  NACK from {sidecar['service']}-{sidecar['replica']} for version {nack['version']} "
                          f"(still serving version {sidecar['acked_version']}): {nack['reason']}", flush=True)
            print(f"t={row['t']:5.1f}s rps={summary['requests']:5d} effective={_fmt_rate(summary['success_rate'])} "
                  f"actual={_fmt_rate(row['actual_success_rate'])} p50={summary['p50_ms']:7.2f}ms "
                  f"p95={summary['p95_ms']:7.2f}ms p99={summary['p99_ms']:7.2f}ms retries={totals['retries']} "
                  f"ejections={totals['ejections']} tls_failures={totals['tls_failures']} "
                  f"open_circuits={totals['open_circuits']} statuses={summary['statuses']}", flush=True)
        stop_waiter.cancel()
        if stop.is_set():
            return 130
        samples = load_task.result()
        # steps after the end of the run are not applied
        await _cancel(scenario_task)
        load.close()
        actual = await _actual_success(mesh)
        result = {
            "topology": topology.name, "duration": args.duration, "rate": args.rate,
            "start_seconds": mesh.ready_seconds, "summary": summarize(samples), "per_second": per_second,
            "actual": {n: {"requests": actual[n]["requests"] - base_actual[n]["requests"],
                           "ok": actual[n]["ok"] - base_actual[n]["ok"]} for n in actual},
            "sidecars": await _sidecar_totals(mesh), "scenario": steps, "control_plane": await mesh.status(),
        }
        for name, counts in result["actual"].items():
            counts["success_rate"] = counts["ok"] / counts["requests"] if counts["requests"] else None
        overall = result["summary"]
        print(f"done: {overall['requests']} requests, effective success {_fmt_rate(overall['success_rate'])}, "
              f"p50 {overall['p50_ms']:.2f} ms, p99 {overall['p99_ms']:.2f} ms; actual success per service: "
              + ", ".join(f"{n} {_fmt_rate(c['success_rate'])}" for n, c in result["actual"].items()), flush=True)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(result, handle, indent=2, default=str)
            print(f"wrote {args.json}")
        return 0
    finally:
        await _cancel(scenario_task, load_task)
        if load is not None:
            load.close()
        await mesh.stop()
        if stop.is_set():
            print("stopped; mesh torn down", flush=True)


async def _unless_stopped(coro, stop: asyncio.Event) -> bool:
    """Await `coro` unless `stop` is set first (then cancel it); True when it completed."""
    task = asyncio.create_task(coro)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not task.done():
        await _cancel(task)
        return False
    task.result()
    return True


async def _cancel(*tasks: asyncio.Task | None) -> None:
    pending = [t for t in tasks if t is not None]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def analyze_command(args: argparse.Namespace) -> int:
    from sandbox.mesh.analyze import analyze
    from sandbox.mesh.topology import load_topology

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
    if args.command == "analyze":
        return analyze_command(args)
    try:
        return asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("stopped", flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
