"""Load test of the site (not a test): simulated learners against the web server `bin/run` starts
(the Procfile's `web` line) with DEBUG off, on SQLite and on PostgreSQL; rewrites bench/site-results.md.

    bin/bench-site [--minutes 2] [--databases sqlite,postgresql] [--rounds 3] [--seconds 10]

Per database: a fresh database (SQLite file in a temporary directory; PostgreSQL from
bin/postgres-private), migrate, load_course, 50 prepared learners; then
  1. 50 learners with think times of 1-5 s for --minutes: zero 5xx, page p99 <= 50 ms;
  2. saturated throughput (10 users, no think time) of the lesson page, the question page and a
     bare Django view on the same server and settings, interleaved in --rounds rounds of --seconds
     each; the medians are compared: the pages should reach >= 0.5x the bare view.
Everything binds to 127.0.0.1 and stops by itself; processes started here are stopped by pid."""

import argparse
import csv
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
LOCUST = ROOT / ".venv" / "bin" / "locust"
RESULTS = ROOT / "bench" / "site-results.md"
LEARNERS = 50
PAGES = ("lesson page", "question page", "course page", "answer (htmx)", "start practice")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def web_command() -> str:
    """The `web` line of the Procfile: exactly the server bin/run starts."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit("Procfile has no web line")


class PrivatePostgres:
    def __enter__(self) -> str:
        self.url_file = tempfile.NamedTemporaryFile("r", delete=False)
        self.process = subprocess.Popen([str(ROOT / "bin" / "postgres-private")], stdout=open(self.url_file.name, "w"))
        for _ in range(300):
            url = Path(self.url_file.name).read_text().strip()
            if url:
                return url
            time.sleep(0.1)
        raise SystemExit("PostgreSQL did not start")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        os.unlink(self.url_file.name)


class Server:
    def __init__(self, env: dict, port: int, log: Path):
        self.env, self.port, self.log = env, port, log

    def __enter__(self) -> "Server":
        command = web_command().replace("${MESHLEARN_PORT}", str(self.port))
        self.process = subprocess.Popen(
            command,
            shell=True,
            cwd=ROOT,
            env={**self.env, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"},
            stdout=open(self.log, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/bench/bare", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"the web server did not answer; see {self.log}")

    def __exit__(self, *exc) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)  # its own session: the shell and the server it ran
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def locust(env: dict, data: Path, mode: str, users: int, seconds: int, port: int, workdir: Path) -> dict:
    prefix = workdir / mode
    status_file = workdir / f"{mode}-status.json"
    subprocess.run(
        [
            str(LOCUST),
            "-f",
            str(ROOT / "bench" / "locustfile.py"),
            "--headless",
            "--only-summary",
            # Learners arrive 5 a second, as people do, not in one burst of TCP connections at the same
            # millisecond (which overflows a small listen backlog: 1 s SYN retries that measure nothing of the site).
            "-u",
            str(users),
            "-r",
            "5" if mode == "learners" else str(users),
            "-t",
            f"{seconds}s",
            "--host",
            f"http://127.0.0.1:{port}",
            "--csv",
            str(prefix),
            "--loglevel",
            "WARNING",
            "--stop-timeout",
            "10",
        ],
        cwd=ROOT,
        env={**env, "BENCH_DATA": str(data), "BENCH_MODE": mode, "BENCH_STATUS_FILE": str(status_file)},
        check=False,
        stdout=subprocess.DEVNULL,
    )
    rows = {row["Name"]: row for row in csv.DictReader(open(f"{prefix}_stats.csv"))}
    statuses = json.loads(status_file.read_text()) if status_file.exists() else {}
    return {"rows": rows, "statuses": statuses}


def run_database(name: str, database_url: str | None, args, workdir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DJANGO_DEBUG": "0",
            "MESHLEARN_VAR_DIR": str(workdir / "var"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    say(f"{name}: migrate, load the course, prepare {LEARNERS} learners")
    for command in (["manage.py", "migrate", "--noinput", "-v", "0"], ["manage.py", "load_course"]):
        subprocess.run([str(PYTHON), *command], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    data = workdir / "learners.json"
    subprocess.run([str(PYTHON), "bench/site_prepare.py", str(data), str(LEARNERS)], cwd=ROOT, env=env, check=True)
    port = free_port()
    result: dict = {"server": web_command()}
    with Server(env, port, workdir / "server.log"):
        say(f"{name}: {LEARNERS} learners, think time 1-5 s, for {args.minutes} min")
        result["learners"] = locust(env, data, "learners", LEARNERS, int(args.minutes * 60), port, workdir)
        throughput: dict[str, list[float]] = {"saturate-lesson": [], "saturate-question": [], "saturate-bare": []}
        for round_ in range(args.rounds):
            for mode in throughput:
                say(f"{name}: saturated {mode.split('-')[1]}, round {round_ + 1} of {args.rounds}")
                run = locust(env, data, mode, 10, args.seconds, port, workdir)
                row = run["rows"]["Aggregated"]
                throughput[mode].append(float(row["Requests/s"]))
                result.setdefault("saturation_5xx", 0)
                result["saturation_5xx"] += sum(n for code, n in run["statuses"].items() if code.startswith("5"))
        result["throughput"] = {mode: statistics.median(values) for mode, values in throughput.items()}
        result["throughput_rounds"] = throughput
    return result


def p99(row: dict) -> str:
    return row["99%"]


def report(results: dict, args) -> str:
    machine = f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end"
    lines = [
        "# Site load test",
        "",
        f"Generated by `bin/bench-site` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC ({machine}; the machine is shared,",
        "so numbers move from run to run). Server: the Procfile's `web` line, as `bin/run` starts it, with DEBUG off:",
        f"`{next(iter(results.values()))['server']}`.",
        "",
        f"## {LEARNERS} learners, think time 1-5 s, {args.minutes} min",
        "",
        "| Database | Requests | 5xx | Other failures | Page p50 (ms) | Page p99 (ms) | Worst page p99 | Target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in results.items():
        rows = result["learners"]["rows"]
        statuses = result["learners"]["statuses"]
        fivexx = sum(n for code, n in statuses.items() if code.startswith("5"))
        aggregated = rows["Aggregated"]
        failures = int(aggregated["Failure Count"]) - fivexx
        worst = max((int(float(rows[page]["99%"])), page) for page in PAGES if page in rows)
        met = fivexx == 0 and int(float(aggregated["99%"])) <= 50
        lines.append(
            f"| {name} | {aggregated['Request Count']} | {fivexx} | {failures} | {aggregated['50%']} | {aggregated['99%']} "
            f"| {worst[0]} ({worst[1]}) | {'met' if met else '**missed**'} (0 5xx, p99 <= 50 ms) |"
        )
    lines += ["", "Per page (p50 / p95 / p99 ms, requests):", ""]
    for name, result in results.items():
        rows = result["learners"]["rows"]
        parts = [
            f"{page} {rows[page]['50%']} / {rows[page]['95%']} / {rows[page]['99%']} ({rows[page]['Request Count']})"
            for page in PAGES
            if page in rows
        ]
        lines.append(f"- {name}: " + "; ".join(parts))
    lines += [
        "",
        f"## Saturated throughput (10 users, no think time; median of {args.rounds} interleaved rounds of {args.seconds} s)",
        "",
        "| Database | Bare view (req/s) | Lesson page | Question page | Lesson / bare | Question / bare | Target | 5xx |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in results.items():
        t = result["throughput"]
        lesson, question = t["saturate-lesson"] / t["saturate-bare"], t["saturate-question"] / t["saturate-bare"]
        met = min(lesson, question) >= 0.5
        lines.append(
            f"| {name} | {t['saturate-bare']:.0f} | {t['saturate-lesson']:.0f} | {t['saturate-question']:.0f} | {lesson:.2f}x "
            f"| {question:.2f}x | {'met' if met else '**missed**'} (>= 0.5x) | {result['saturation_5xx']} |"
        )
    lines += ["", "Rounds (req/s):", ""]
    for name, result in results.items():
        rounds = result["throughput_rounds"]
        lines.append(
            f"- {name}: "
            + "; ".join(
                f"{mode.split('-')[1]} {', '.join(f'{v:.0f}' for v in values)}" for mode, values in rounds.items()
            )
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    results = {}
    for name in args.databases.split(","):
        with tempfile.TemporaryDirectory(prefix=f"meshlearn-bench-{name}-") as tmp:
            workdir = Path(tmp)
            if name == "sqlite":
                results["SQLite"] = run_database("SQLite", None, args, workdir)
            elif name == "postgresql":
                with PrivatePostgres() as url:
                    results["PostgreSQL"] = run_database("PostgreSQL", url, args, workdir)
            else:
                raise SystemExit(f"unknown database {name!r}: sqlite or postgresql")
    text = report(results, args)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
