"""Soak of the live sandbox page (a plain script, not a test): one learner's experiment page kept open for a
long time, reconnecting its live stream now and then, as a browser tab does when the network blips, the
laptop sleeps or the learner reloads. Looks for leaks: live streams, Redis connections, memory.

    REDIS_URL=redis://127.0.0.1:6379/15 python bench/soak.py [--duration 600] [--reconnect 20] [--sample 10]

Each reconnect drops the open stream abruptly (the socket closes with unread data, as a closed tab does),
reloads the page and its polled fragments, then opens a new stream. Every sample records uvicorn's RSS and
CPU, its Redis connections (from /proc) and the XREAD readers in Redis. At the end the last stream closes and the script waits
for every reader to go. It exits non-zero if a reader or a connection is left, or if uvicorn's RSS grew by
more than --rss-growth-mb.

Everything binds to 127.0.0.1, is one page's worth of load and stops by itself after --duration seconds.
It uses its own SQLite file and the Redis database REDIS_URL names (its sandbox keys are cleared first: give
it one no running site uses). The same soak, shortened, runs in the suite (tests/sandbox/test_live_soak.py).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SETTLE = 60.0  # seconds: the bound on waiting for readers to go at the end


@dataclass
class Sample:
    t: float
    rss_mb: float
    cpu_seconds: float
    redis_connections: int  # uvicorn's own connections to Redis (the worker's come and go on their own)
    xread_readers: int  # across the Redis server: the worker's command reader, and each open stream


@dataclass
class SoakResult:
    duration: float
    reconnect_every: float
    reconnects: int = 0
    events_received: int = 0
    refused_streams: int = 0
    baseline_connections: int = 0
    baseline_readers: int = 0
    samples: list[Sample] = field(default_factory=list)
    end_connections: int = 0
    end_readers: int = 0

    @property
    def rss_growth_mb(self) -> float:
        # From the first sample after the first reconnect (the process warmed up: imports, templates) to the end.
        warm = [s for s in self.samples if s.t >= min(self.reconnect_every, self.duration / 4)] or self.samples
        return warm[-1].rss_mb - warm[0].rss_mb

    def summary(self) -> dict:
        first, last = self.samples[0], self.samples[-1]
        return {
            "duration_s": round(self.duration),
            "reconnect_every_s": self.reconnect_every,
            "reconnects": self.reconnects,
            "events_received": self.events_received,
            "refused_streams": self.refused_streams,
            "rss_mb_first_last_max": [first.rss_mb, last.rss_mb, max(s.rss_mb for s in self.samples)],
            "rss_growth_mb_after_warmup": round(self.rss_growth_mb, 1),
            "uvicorn_cpu_seconds": round(last.cpu_seconds - first.cpu_seconds, 1),
            "uvicorn_redis_connections_baseline_max_end": [
                self.baseline_connections,
                max(s.redis_connections for s in self.samples),
                self.end_connections,
            ],
            "xread_readers_baseline_max_end": [
                self.baseline_readers,
                max(s.xread_readers for s in self.samples),
                self.end_readers,
            ],
        }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_connections(pid: int, port: int) -> int:
    """Established TCP connections of process `pid` to 127.0.0.1:`port` (from /proc: its socket inodes)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == port and fields[3] == "01" and fields[9] in inodes:
            count += 1
    return count


def redis_counts(redis_url: str, pid: int) -> tuple[int, int]:
    """(uvicorn's connections to Redis, connections whose last command is XREAD across the Redis server)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        clients = client.client_list()
        port = client.connection_pool.connection_kwargs.get("port", 6379)
    finally:
        client.close()
    return process_connections(pid, port), sum(1 for c in clients if c.get("cmd") == "xread")


class Page:
    """One open experiment page on raw sockets: its live stream, and the reloads a reconnect does."""

    def __init__(self, port: int, experiment_id: int, cookie: str) -> None:
        self.port = port
        self.experiment_id = experiment_id
        self.cookie = cookie
        self.stream: socket.socket | None = None
        self.events = 0
        self.refused = 0

    def _request(self, path: str, *, accept: str = "text/html") -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nCookie: {self.cookie}\r\n"
            f"Accept: {accept}\r\nConnection: close\r\n\r\n".encode()
        )
        return sock

    def _get(self, path: str) -> int:
        sock = self._request(path)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        sock.close()
        return int(data.split(b" ", 2)[1])

    def reload(self) -> None:
        base = f"/sandbox/experiments/{self.experiment_id}/"
        for path in (base, base + "live/"):
            status = self._get(path)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")

    def open_stream(self) -> None:
        sock = self._request(f"/sandbox/experiments/{self.experiment_id}/stream/", accept="text/event-stream")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        status = int(data.split(b" ", 2)[1])
        if status == 429:
            self.refused += 1
        elif status != 200:
            raise RuntimeError(f"the stream answered {status}")
        sock.setblocking(False)
        self.stream = sock
        self.count(data)

    def count(self, data: bytes) -> None:
        self.events += data.count(b"\nevent: ") + data.startswith(b"event: ")

    def drain(self) -> None:
        """Read what the stream sent so far (a tab reads its stream; only a reconnect drops unread data)."""
        if self.stream is None:
            return
        try:
            while chunk := self.stream.recv(65536):
                self.count(chunk)
        except BlockingIOError:
            pass
        except OSError:
            self.stream = None

    def drop_stream(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None


def soak(
    *,
    port: int,
    uvicorn_pid: int,
    redis_url: str,
    experiment_id: int,
    cookie: str,
    duration: float,
    reconnect: float,
    sample: float,
    log=print,
) -> SoakResult:
    """Keep one page open for `duration` seconds, reconnecting every `reconnect`, then close it and wait for the
    server to let go of everything. Returns what was measured; asserts nothing."""
    result = SoakResult(duration=duration, reconnect_every=reconnect)
    page = Page(port, experiment_id, cookie)
    # The baseline is taken after the page's first load: the pages' own Redis client (one, kept by the web
    # process) is not a leak. A leak is what grows with the reconnects, or what the closed streams leave.
    page.reload()
    result.baseline_connections, result.baseline_readers = redis_counts(redis_url, uvicorn_pid)
    page.open_stream()
    started = time.monotonic()
    next_reconnect = started + reconnect
    next_sample = started
    while (now := time.monotonic()) < started + duration:
        page.drain()
        if now >= next_sample:
            connections, readers = redis_counts(redis_url, uvicorn_pid)
            point = Sample(round(now - started, 1), rss_mb(uvicorn_pid), cpu_seconds(uvicorn_pid), connections, readers)
            result.samples.append(point)
            log(json.dumps(asdict(point)))
            next_sample += sample
        if now >= next_reconnect:
            page.drop_stream()
            page.reload()
            page.open_stream()
            result.reconnects += 1
            next_reconnect += reconnect
        time.sleep(0.2)
    page.drop_stream()
    result.events_received, result.refused_streams = page.events, page.refused
    deadline = time.monotonic() + SETTLE
    while True:
        result.end_connections, result.end_readers = redis_counts(redis_url, uvicorn_pid)
        settled = result.end_readers <= result.baseline_readers and (
            result.end_connections <= result.baseline_connections
        )
        if settled or time.monotonic() > deadline:
            break
        time.sleep(1)
    connections, readers = redis_counts(redis_url, uvicorn_pid)
    result.samples.append(
        Sample(
            round(time.monotonic() - started, 1), rss_mb(uvicorn_pid), cpu_seconds(uvicorn_pid), connections, readers
        )
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600, help="seconds the page stays open (default 600)")
    parser.add_argument("--reconnect", type=float, default=20, help="seconds between reconnects (default 20)")
    parser.add_argument("--sample", type=float, default=10, help="seconds between samples (default 10)")
    parser.add_argument("--rss-growth-mb", type=float, default=20, help="the RSS growth that counts as a leak")
    parser.add_argument("--out", type=Path, help="write the summary and samples as JSON to this file")
    args = parser.parse_args()
    if "REDIS_URL" not in os.environ:
        raise SystemExit("set REDIS_URL to a Redis database this soak may clear")
    if args.duration > 3600:
        raise SystemExit("--duration: at most 3600 seconds")
    os.environ.setdefault("MESHLEARN_SANDBOX_RUNTIME", "in_process")  # the page is measured, not the mesh

    from bench.sandbox import Site

    with tempfile.TemporaryDirectory(prefix="bench-soak-") as workdir, Site(Path(workdir), 1) as site:
        from sandbox import services
        from sandbox.models import Experiment

        user, session = site.session_for("soak-learner")
        experiment = services.experiment_start(user=user, topology="pair")
        deadline = time.monotonic() + 120
        while Experiment.objects.get(pk=experiment.pk).status != "running":
            if time.monotonic() > deadline:
                raise SystemExit("the experiment did not start")
            time.sleep(0.5)
        uvicorn_pid = site.processes[0].pid
        result = soak(
            port=site.port,
            uvicorn_pid=uvicorn_pid,
            redis_url=os.environ["REDIS_URL"],
            experiment_id=experiment.pk,
            cookie=f"sessionid={session}",
            duration=args.duration,
            reconnect=args.reconnect,
            sample=args.sample,
        )
        still_running = Experiment.objects.get(pk=experiment.pk).status == "running"
    summary = {**result.summary(), "experiment_still_running_at_the_end": still_running}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "samples": [asdict(s) for s in result.samples]}, indent=1))
    leaked = (
        result.end_readers > result.baseline_readers
        or result.end_connections > result.baseline_connections
        or result.rss_growth_mb > args.rss_growth_mb
    )
    sys.exit(1 if leaked else 0)


if __name__ == "__main__":
    main()
