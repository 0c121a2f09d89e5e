"""An unchecked policy is pushed as a candidate: the sidecars get it (and NACK it), the store never holds it."""

import json

from sandbox.mesh.config.topology import load_topology, shipped_topology_path
from sandbox.mesh.controlplane.control_plane import ControlPlane
from sandbox.mesh.controlplane.sessions import SidecarSession


class Wire:
    """Stands in for a sidecar's control connection: keeps what the control plane writes."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    def write(self, data: bytes) -> None:
        self.messages.append(json.loads(data))

    def is_closing(self) -> bool:
        return False


class WatchedPlane(ControlPlane):
    """Notes b's stored traffic policy at every push."""

    def push_all(self, services=None, candidate=None) -> None:
        self.stored_during_push.append(self.policies["b"].traffic)
        super().push_all(services, candidate)


def test_an_unchecked_policy_reaches_the_sidecars_without_entering_the_store():
    plane = WatchedPlane(load_topology(shipped_topology_path("pair")))
    plane.stored_during_push = []
    stored = plane.policies["b"].traffic
    wire = Wire()
    session = plane.sessions[("a", 0)] = SidecarSession("a", 0, 1234, writer=wire)
    plane._issue_for(session)
    bad = {"retry": {"attempts": -1}}

    reply = plane._operate({"op": "set_traffic", "service": "b", "traffic": bad, "validate": False})

    assert reply["ok"] is True
    assert wire.messages[-1]["config"]["destinations"]["b"]["traffic"] == bad  # a's sidecar gets the candidate
    assert plane.stored_during_push == [stored]  # the store held the valid policy throughout
    assert plane.policies["b"].traffic == stored
    plane._operate({"op": "set_mtls_mode", "service": "a", "mode": "PERMISSIVE"})
    assert wire.messages[-1]["config"]["destinations"]["b"]["traffic"] == stored  # later pushes carry the valid one


def test_a_checked_bad_policy_is_refused_and_nothing_is_pushed():
    plane = ControlPlane(load_topology(shipped_topology_path("pair")))
    wire = Wire()
    session = plane.sessions[("a", 0)] = SidecarSession("a", 0, 1234, writer=wire)
    plane._issue_for(session)

    reply = plane._operate({"op": "set_traffic", "service": "b", "traffic": {"retry": {"attempts": -1}}})

    assert reply == {"ok": False, "error": "b.traffic.retry.attempts: must be a whole number from 0 to 10, got -1"}
    assert wire.messages == []
