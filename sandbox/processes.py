"""Killing what a lost experiment left behind: the mesh's process group on this machine.

A process group id is reused once the group is gone, so only members that are mesh components
(`python -m sandbox.mesh.<component>`) are killed, never an unrelated group that got the same id.
"""

import os
import signal
from pathlib import Path

MESH_MODULE = b"sandbox.mesh"


def process_group_members(pgid: int) -> list[int]:
    """Pids of mesh components in process group `pgid` on this machine."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # it exited while we looked
        # Field 5 of /proc/<pid>/stat is the process group; the command name (field 2) may hold spaces.
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 2 and int(fields[2]) == pgid and MESH_MODULE in cmdline:
            members.append(int(entry.name))
    return members


def process_group_kill(pgid: int) -> int:
    """SIGKILL every mesh component in the group; returns how many were signalled."""
    killed = 0
    for pid in process_group_members(pgid):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed
