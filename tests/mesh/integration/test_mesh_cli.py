"""The command line: `run` with a scenario prints a live summary and writes a JSON result; `analyze` lists findings."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mesh_support import pair_topology

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def test_run_with_a_scenario_shows_the_failure_live_and_writes_json(tmp_path):
    topology = pair_topology(tmp_path, b_traffic="retry:\n  attempts: 3\n  budget_ratio: 1.0\n")
    scenario = tmp_path / "flaky.yaml"
    scenario.write_text("name: flaky\nactions:\n  - {at: 1s, action: fail, service: b, percent: 30}\n")
    out = tmp_path / "result.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox.mesh",
            "run",
            str(topology),
            "--scenario",
            str(scenario),
            "--duration",
            "4",
            "--rate",
            "50",
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("t=") for line in lines) >= 3  # one live line per second
    assert any("action: service b fails 30% of requests with 503" in line for line in lines)
    result = json.loads(out.read_text())
    assert result["summary"]["requests"] >= 190
    assert result["summary"]["success_rate"] > 0.97
    assert 0.6 < result["actual"]["b"]["success_rate"] < 0.9  # 1 s healthy, then ~70%
    assert result["sidecars"]["retries"] > 0
    assert result["scenario"][0]["error"] is None


def test_analyze_prints_findings(tmp_path):
    topology = tmp_path / "bad.yaml"
    topology.write_text("name: bad\nentry: a\nservices:\n  - {name: a, calls: [ghost]}\n")
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.mesh", "analyze", str(topology)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "ghost" in done.stdout, done.stdout + done.stderr
