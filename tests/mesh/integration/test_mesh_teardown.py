"""After a run, and after the supervisor is SIGKILLed, no child process, listening port or control socket remains."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mesh_support import listening_ports_of, pair_topology, pid_alive, pids_in_group, port_listening, run, running_mesh

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def _wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _control_socket_of(pids: list[int]) -> str:
    """The control plane's socket path, read from its command line (the path is not a secret)."""
    for pid in pids:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"--socket" in argv:
            return argv[argv.index(b"--socket") + 1].decode()
    raise AssertionError("no control plane among the pids")


def test_stop_leaves_no_process_and_no_listening_port(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_mesh(path) as mesh:
            pids = mesh.pids()
            pgid = mesh.pgid
            ports = listening_ports_of(pids)
            assert os.path.exists(mesh.control_path)
        return pids, pgid, ports, mesh.run_dir

    pids, pgid, ports, run_dir = run(body())
    assert len(pids) == 5  # control plane, 2 services, 2 sidecars
    assert len(ports) >= 2 + 2 * 3  # the control plane listens on a Unix socket, not a port
    assert not os.path.exists(run_dir)
    assert not any(pid_alive(p) for p in pids)
    assert pids_in_group(pgid) == []
    assert not any(port_listening(p) for p in ports)


def test_sigkill_of_the_supervisor_leaves_no_process_and_no_listening_port(tmp_path):
    path = pair_topology(tmp_path)
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.mesh",
            "run",
            str(path),
            "--duration",
            "30",
            "--rate",
            "20",
            "--logs",
            str(tmp_path / "logs"),
        ],  # a SIGKILLed supervisor cannot remove its own temp dir
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = supervisor.stdout.readline()
        assert "process group" in line, line
        pgid = int(line.rsplit("process group", 1)[1].strip())
        assert _wait_until(lambda: len(pids_in_group(pgid)) == 5, 5)
        pids = pids_in_group(pgid)
        ports = listening_ports_of(pids)
        assert len(ports) >= 8
        control_socket = _control_socket_of(pids)
        assert os.path.exists(control_socket)
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait(5)
        assert _wait_until(lambda: pids_in_group(pgid) == [], 5), pids_in_group(pgid)
        assert not any(pid_alive(p) for p in pids)
        assert not any(port_listening(p) for p in ports)
        assert _wait_until(lambda: not os.path.exists(os.path.dirname(control_socket)), 5)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        supervisor.stdout.close()
        for pid in pids_in_group(pgid) if "pgid" in locals() else []:
            os.kill(pid, signal.SIGKILL)


def test_sigterm_to_the_cli_tears_the_mesh_down_in_order(tmp_path):
    path = pair_topology(tmp_path)
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "sandbox.mesh", "run", str(path), "--duration", "30", "--rate", "20"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = supervisor.stdout.readline()
        pgid = int(line.rsplit("process group", 1)[1].strip())
        assert _wait_until(lambda: len(pids_in_group(pgid)) == 5, 5)
        ports = listening_ports_of(pids_in_group(pgid))
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(10) == 130
        assert "mesh torn down" in supervisor.stdout.read()
        assert pids_in_group(pgid) == []
        assert not any(port_listening(p) for p in ports)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        supervisor.stdout.close()


def test_sigterm_during_a_scenario_ends_the_cli_within_seconds_with_no_child_left(tmp_path):
    path = pair_topology(tmp_path)
    scenario = tmp_path / "scenario.yaml"
    # Actions keep the supervisor busy talking to the mesh when the signal arrives.
    scenario.write_text(
        "name: busy\nactions:\n"
        + "".join(f"  - {{at: {t / 10}s, action: fail, service: b, percent: 10}}\n" for t in range(5, 200))
    )
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.mesh",
            "run",
            str(path),
            "--scenario",
            str(scenario),
            "--duration",
            "60",
            "--rate",
            "50",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = supervisor.stdout.readline()
        pgid = int(line.rsplit("process group", 1)[1].strip())
        while not (line := supervisor.stdout.readline()).startswith("t="):  # inside the per-second loop
            assert line, "the CLI ended before its first summary line"
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(20) == 130  # generous for a loaded machine; without the fix it runs 60 s
        assert "mesh torn down" in supervisor.stdout.read()
        assert pids_in_group(pgid) == []
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        supervisor.stdout.close()
