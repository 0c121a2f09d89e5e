"""Benchmark of the mesh data plane on loopback (a plain script, not a test).

    python bench/run.py [--quick] [--profile] [--out bench/results.md]

Measures in one run, HTTP/1.1 keep-alive on 127.0.0.1:
  1. added latency of one sidecar hop at 200 req/s (open loop, p50/p99 vs the direct path);
  2. saturated throughput through one sidecar vs the same hop through nginx vs direct (wrk);
  3. mTLS vs plaintext through A -> sidecar -> sidecar -> B (throughput with wrk, p50 at 200 req/s);
  4. resident memory (VmRSS) of each idle sidecar process;
  5. shop topology start time (all processes up, certificates issued, config ACKed);
  6. CPU time per request of the proxy processes during the throughput rounds (user + system, from
     /proc), which a loaded machine disturbs far less than requests per second.
The mesh components run on asyncio's event loop, or on uvloop with MESH_EVENT_LOOP=uvloop in the environment.
The common upstream for 1-2 is nginx answering `return 200` (one worker), so the proxies are what
is measured. Needs Debian's `nginx-light` (/usr/sbin/nginx) and `wrk`; `--profile` needs py-spy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sandbox.mesh.config.topology import load_topology  # noqa: E402
from sandbox.mesh.controlplane.ops import RegisterEndpoint  # noqa: E402
from sandbox.mesh.runtime.loadgen import LoadGenerator, percentile  # noqa: E402
from sandbox.mesh.runtime.supervisor import ProcessMesh  # noqa: E402

NGINX = "/usr/sbin/nginx"
BENCH_TOPOLOGY = """\
name: bench
entry: a
services:
  - {name: a, calls: [b]}
  - {name: b}
  - {name: up, sidecar: false}
"""

NGINX_CONF = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
{body}
}}
"""
UPSTREAM_BODY = """\
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\\n"; }}
    }}
"""
PROXY_BODY = """\
    upstream origin {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Nginx:
    """One nginx (one worker) under a temporary prefix: the upstream (`return 200`), or a keep-alive
    reverse proxy to it. Two separate instances, so the proxy's worker does only proxying, as the
    sidecar process does."""

    def __init__(self, upstream_port: int | None = None) -> None:
        self.prefix = tempfile.mkdtemp(prefix="bench-nginx-")
        self.port = free_port()
        self.upstream_port = upstream_port
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Nginx:
        conf = Path(self.prefix) / "nginx.conf"
        if self.upstream_port is None:
            body = UPSTREAM_BODY.format(port=self.port)
        else:
            body = PROXY_BODY.format(port=self.port, upstream_port=self.upstream_port)
        conf.write_text(NGINX_CONF.format(prefix=self.prefix, body=body))
        self.process = subprocess.Popen(
            [NGINX, "-p", self.prefix, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not _listening(self.port):
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGQUIT)  # graceful; the master stops its worker
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.prefix, ignore_errors=True)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wrk(port: int, host: str, seconds: float, connections: int = 32) -> float:
    """Requests per second from `wrk` (closed loop, keep-alive) with the given Host header."""
    return wrk_counted(port, host, seconds, connections)[0]


def wrk_counted(port: int, host: str, seconds: float, connections: int = 32) -> tuple[float, int]:
    """Requests per second and the number of requests completed."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", f"Host: {host}", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    match = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if not match:
        raise RuntimeError(f"wrk gave no rate:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if non2xx and int(non2xx.group(1)) > 0:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return float(match.group(1)), int(re.search(r"(\d+) requests in", out).group(1))


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def worker_pids(master: subprocess.Popen) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master.pid)], capture_output=True, text=True, check=False).stdout
    return [int(pid) for pid in out.split()]


def measured(port: int, host: str, seconds: float, pids: list[int], cpu: list[float]) -> float:
    """wrk's rate; appends the CPU microseconds per request that `pids` spent meanwhile to `cpu`."""
    before = cpu_seconds(pids)
    rate, count = wrk_counted(port, host, seconds)
    cpu.append((cpu_seconds(pids) - before) / max(count, 1) * 1e6)
    return rate


async def open_loop(port: int, host: str, rate: float, seconds: float) -> dict:
    load = LoadGenerator("127.0.0.1", [port], rate=rate, host_header=host, max_in_flight=64)
    samples = await load.run(seconds)
    load.close()
    ok = [s.latency for s in samples if 200 <= s.status < 300]
    ok.sort()
    return {"n": len(samples), "ok": len(ok), "p50": percentile(ok, 0.5) * 1000, "p99": percentile(ok, 0.99) * 1000}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def profile(pid: int, seconds: float, load) -> list[tuple[str, float]]:
    """py-spy samples of `pid` while `load()` runs; returns the top functions by own time."""
    raw = Path(tempfile.mkstemp(suffix=".txt")[1])
    spy = subprocess.Popen(
        [
            shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
            "record",
            "-p",
            str(pid),
            "-d",
            str(int(seconds)),
            "-r",
            "200",
            "--format",
            "raw",
            "-o",
            str(raw),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    load()
    spy.wait(timeout=seconds + 30)
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frame = stack.split(";")[-1]
        frame = re.sub(r" \(/.*?/(lib/python3\.\d+|sandbox)/", r" (\1/", frame)
        own[frame] = own.get(frame, 0) + int(count)
        total += int(count)
    raw.unlink()
    return [(frame, 100 * count / total) for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:12]]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--profile", action="store_true", help="py-spy profile of a saturated sidecar")
    parser.add_argument("--out", default=str(REPO / "bench" / "results.md"))
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds (median reported)")
    args = parser.parse_args()
    latency_seconds = 5 if args.quick else 10
    wrk_seconds = 3 if args.quick else 5
    results: dict[str, object] = {}

    workdir = Path(tempfile.mkdtemp(prefix="bench-mesh-"))
    topo_path = workdir / "bench.yaml"
    topo_path.write_text(BENCH_TOPOLOGY)
    with Nginx() as origin, Nginx(upstream_port=origin.port) as proxy:
        mesh = ProcessMesh(load_topology(topo_path), topo_path)
        await mesh.start()
        try:
            # The "up" service is the nginx upstream: point the mesh's endpoint for it there.
            await mesh.operate(RegisterEndpoint("up", 0, origin.port))
            await mesh.wait_in_sync()
            a = mesh.replicas[("a", 0)]
            sidecar_pids = [c.process.pid for (kind, _, _), c in mesh.children.items() if kind == "sidecar"]
            results["rss_mb"] = [rss_mb(pid) for pid in sidecar_pids]
            a_sidecar_pid = mesh.children[("sidecar", "a", 0)].process.pid

            # 1. added latency per hop at 200 req/s
            await open_loop(a.outbound_port, "up", 200, 1)  # warm-up
            direct = await open_loop(origin.port, "up", 200, latency_seconds)
            hop = await open_loop(a.outbound_port, "up", 200, latency_seconds)
            via_nginx = await open_loop(proxy.port, "up", 200, latency_seconds)
            results["latency"] = {"direct": direct, "sidecar": hop, "nginx": via_nginx}

            # 2. saturated throughput, same upstream
            wrk(a.outbound_port, "up", 1)  # warm-up
            # Rounds interleave the three paths so that other load on the shared machine hits them alike;
            # the medians are reported.
            rounds = {"direct": [], "nginx": [], "sidecar": []}
            cpu = {"nginx": [], "sidecar": [], "mtls": [], "plain": []}
            for _ in range(args.rounds):
                rounds["direct"].append(wrk(origin.port, "up", wrk_seconds))
                rounds["nginx"].append(
                    measured(proxy.port, "up", wrk_seconds, worker_pids(proxy.process), cpu["nginx"])
                )
                rounds["sidecar"].append(measured(a.outbound_port, "up", wrk_seconds, [a_sidecar_pid], cpu["sidecar"]))
            results["throughput"] = {k: statistics.median(v) for k, v in rounds.items()}
            results["throughput_rounds"] = rounds
            results["cpu_rounds"] = cpu
            if args.profile:
                results["profile_hop"] = profile(
                    a_sidecar_pid, wrk_seconds, lambda: wrk(a.outbound_port, "up", wrk_seconds)
                )

            # 3. mTLS vs plaintext through a-sidecar -> b-sidecar -> b, alternating the two modes
            async def use_mtls(on: bool) -> None:
                await mesh.set_mtls_mode("b", "STRICT" if on else "PERMISSIVE")
                await mesh.set_outbound_tls("a", on)
                await mesh.wait_in_sync()
                wrk(a.outbound_port, "b", 1)  # warm the new connections

            tls_rounds = {"mtls": [], "plain": []}
            path_pids = [
                a_sidecar_pid,
                mesh.children[("sidecar", "b", 0)].process.pid,
                mesh.children[("service", "b", 0)].process.pid,
            ]
            latencies = {"mtls": [], "plain": []}
            for _ in range(args.rounds):
                for mode in ("mtls", "plain"):
                    await use_mtls(mode == "mtls")
                    tls_rounds[mode].append(measured(a.outbound_port, "b", wrk_seconds, path_pids, cpu[mode]))
                    latencies[mode].append(await open_loop(a.outbound_port, "b", 200, latency_seconds / 2))
            if args.profile:
                await use_mtls(True)
                results["profile_mtls"] = profile(
                    a_sidecar_pid, wrk_seconds, lambda: wrk(a.outbound_port, "b", wrk_seconds)
                )

            def merged(runs: list[dict]) -> dict:
                return {
                    "p50": statistics.median(r["p50"] for r in runs),
                    "p99": statistics.median(r["p99"] for r in runs),
                }

            results["mtls"] = {
                "mtls_rps": statistics.median(tls_rounds["mtls"]),
                "plain_rps": statistics.median(tls_rounds["plain"]),
                "mtls": merged(latencies["mtls"]),
                "plain": merged(latencies["plain"]),
                "rounds": tls_rounds,
            }
        finally:
            await mesh.stop()

    # 5. shop start time (median of 3)
    starts = []
    shop = REPO / "sandbox" / "mesh" / "topologies" / "shop.yaml"
    for _ in range(3):
        mesh = ProcessMesh(load_topology(shop), shop)
        await mesh.start()
        starts.append(mesh.ready_seconds)
        await mesh.stop()
    results["shop_start"] = starts
    shutil.rmtree(workdir, ignore_errors=True)
    report = render(results, wrk_seconds=wrk_seconds, latency_seconds=latency_seconds)
    Path(args.out).write_text(report)
    print(report)


def render(r: dict, *, wrk_seconds: float, latency_seconds: float) -> str:
    lat = r["latency"]
    thr = r["throughput"]
    m = r["mtls"]
    added_p50 = lat["sidecar"]["p50"] - lat["direct"]["p50"]
    added_p99 = lat["sidecar"]["p99"] - lat["direct"]["p99"]
    nginx_ratio = thr["sidecar"] / thr["nginx"]
    mtls_ratio = m["mtls_rps"] / m["plain_rps"]
    p50_ratio = m["mtls"]["p50"] / m["plain"]["p50"]
    rss = max(r["rss_mb"])
    cpu_nginx, cpu_sidecar, cpu_plain, cpu_mtls = (
        statistics.median(r["cpu_rounds"][k]) for k in ("nginx", "sidecar", "plain", "mtls")
    )
    start = statistics.median(r["shop_start"])

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    cpu = os.cpu_count()
    rows = [
        ("Added latency per sidecar hop at 200 req/s, p50", "<= 1 ms", f"{added_p50:.3f} ms", verdict(added_p50 <= 1)),
        ("Added latency per sidecar hop at 200 req/s, p99", "<= 5 ms", f"{added_p99:.3f} ms", verdict(added_p99 <= 5)),
        (
            "Saturated throughput through one sidecar / nginx",
            ">= 0.5x",
            f"{thr['sidecar']:.0f} / {thr['nginx']:.0f} req/s = {nginx_ratio:.2f}x",
            verdict(nginx_ratio >= 0.5),
        ),
        (
            "... and / the direct path (no proxy)",
            "(report)",
            f"{thr['sidecar']:.0f} / {thr['direct']:.0f} req/s = {thr['sidecar'] / thr['direct']:.2f}x",
            "-",
        ),
        (
            "mTLS / plaintext throughput, A -> sidecar -> sidecar -> B",
            ">= 0.8x",
            f"{m['mtls_rps']:.0f} / {m['plain_rps']:.0f} req/s = {mtls_ratio:.2f}x",
            verdict(mtls_ratio >= 0.8),
        ),
        (
            "CPU per proxied request: nginx / one sidecar (user + system, medians)",
            "(report)",
            f"{cpu_nginx:.1f} / {cpu_sidecar:.1f} us = {cpu_nginx / cpu_sidecar:.2f}x",
            "-",
        ),
        (
            "CPU per request on A -> sidecar -> sidecar -> B (two sidecars and B): plaintext / mTLS",
            "(report)",
            f"{cpu_plain:.1f} / {cpu_mtls:.1f} us = {cpu_plain / cpu_mtls:.2f}x",
            "-",
        ),
        (
            "mTLS / plaintext p50 at 200 req/s, same path",
            "<= 1.25x",
            f"{m['mtls']['p50']:.3f} / {m['plain']['p50']:.3f} ms = {p50_ratio:.2f}x",
            verdict(p50_ratio <= 1.25),
        ),
        (
            "Resident memory per idle sidecar (VmRSS, max of 2)",
            "<= 40 MB",
            f"{rss:.1f} MB ({', '.join(f'{x:.1f}' for x in r['rss_mb'])})",
            verdict(rss <= 40),
        ),
        (
            "Shop topology start (13 processes up, certificates issued, config ACKed), median of 3",
            "<= 3 s",
            f"{start:.2f} s ({', '.join(f'{x:.2f}' for x in r['shop_start'])})",
            verdict(start <= 3),
        ),
    ]
    lines = [
        "# Mesh data-plane benchmark",
        "",
        f"`python bench/run.py` on this machine ({cpu} cores, shared), loopback, HTTP/1.1 keep-alive, Python "
        f"{sys.version.split()[0]}, nginx-light 1.22 as the common upstream (`return 200`, 1 worker) and, as a separate instance "
        f"(1 worker), the reference proxy, Debian `wrk` 4.1 (1 thread, 32 connections, {wrk_seconds} s per round) for throughput, the mesh's "
        f"own open-loop load generator ({latency_seconds} s at 200 req/s, latency from the scheduled send time) "
        "for latency.",
        "",
        "| Measure | Target | Measured | |",
        "| --- | --- | --- | --- |",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        "",
        "Throughput rounds (req/s, interleaved; the table shows medians): "
        + "; ".join(f"{k} {', '.join(f'{x:.0f}' for x in v)}" for k, v in r["throughput_rounds"].items())
        + "; "
        + "; ".join(f"{k} {', '.join(f'{x:.0f}' for x in v)}" for k, v in m["rounds"].items())
        + ".",
        "",
        "CPU rounds (microseconds per request, same rounds): "
        + "; ".join(f"{k} {', '.join(f'{x:.1f}' for x in v)}" for k, v in r["cpu_rounds"].items())
        + f". Event loop of the mesh components: {os.environ.get('MESH_EVENT_LOOP', 'asyncio')}.",
        "",
        "Latency detail (ms, 200 req/s open loop; mTLS/plaintext rows: median over the rounds):",
        "",
        "| Path | p50 | p99 |",
        "| --- | --- | --- |",
        f"| direct to the upstream | {lat['direct']['p50']:.3f} | {lat['direct']['p99']:.3f} |",
        f"| through one sidecar | {lat['sidecar']['p50']:.3f} | {lat['sidecar']['p99']:.3f} |",
        f"| through nginx | {lat['nginx']['p50']:.3f} | {lat['nginx']['p99']:.3f} |",
        f"| A -> sidecar -> sidecar -> B, mTLS | {m['mtls']['p50']:.3f} | {m['mtls']['p99']:.3f} |",
        f"| A -> sidecar -> sidecar -> B, plaintext | {m['plain']['p50']:.3f} | {m['plain']['p99']:.3f} |",
        "",
    ]
    for key, title in (("profile_hop", "one plaintext hop"), ("profile_mtls", "the caller's sidecar on the mTLS path")):
        if key in r:
            lines += [
                f"py-spy profile of a saturated sidecar, {title} (own time, top functions):",
                "",
                "| % samples | function |",
                "| --- | --- |",
            ]
            lines += [f"| {pct:.1f} | `{frame}` |" for frame, pct in r[key]]
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    asyncio.run(main())
