"""The operator channel: each op is declared once, reads back from its own JSON, is checked where the control
plane receives it, and says whether a restarted control plane gets it again."""

import pytest

from sandbox.mesh.config.topology import load_topology, shipped_topology_path
from sandbox.mesh.controlplane.control_plane import ControlPlane
from sandbox.mesh.controlplane.ops import (
    OPS,
    IssueClientCert,
    OpError,
    RegisterEndpoint,
    SetAuthorization,
    SetCertFault,
    SetMtlsMode,
    SetOutboundTls,
    SetTraffic,
    Status,
    op_from_json,
)

EXAMPLES = [
    Status(),
    RegisterEndpoint("b", 0, 8080),
    IssueClientCert(csr="-----BEGIN CERTIFICATE REQUEST-----"),
    SetTraffic("b", {"retry": {"attempts": 2}}),
    SetTraffic("b", {"retry": {"attempts": -1}}, validate=False),
    SetAuthorization("b", None),
    SetMtlsMode("b", "PERMISSIVE"),
    SetOutboundTls("a", False),
    SetCertFault("b", "expired"),
    SetCertFault("b", None),
]


@pytest.mark.parametrize("op", EXAMPLES, ids=lambda op: op.name)
def test_an_op_reads_back_from_its_json(op):
    assert op_from_json(op.to_json()) == op


def test_every_op_has_an_example():
    assert {type(op) for op in EXAMPLES} == set(OPS.values())


@pytest.mark.parametrize(
    "message, error",
    [
        ({"op": "reboot"}, "unknown op 'reboot'"),
        ({"op": "set_mtls_mode", "service": "b", "mode": "strict"}, "mode: must be one of STRICT, PERMISSIVE, DISABLE"),
        ({"op": "set_outbound_tls", "service": "a", "enabled": "false"}, "a.outbound_tls: must be true or false"),
        ({"op": "set_cert_fault", "service": "b", "fault": "stolen"}, "fault: must be one of expired, foreign_ca"),
        ({"op": "set_mtls_mode", "service": "b"}, "set_mtls_mode needs mode"),
        ({"op": "set_mtls_mode", "service": "nope", "mode": "STRICT"}, "unknown service 'nope'"),
    ],
)
def test_the_control_plane_refuses_a_bad_op_saying_why(message, error):
    plane = ControlPlane(load_topology(shipped_topology_path("pair")))
    before = plane.version

    reply = plane._operate(message)

    assert reply["ok"] is False and reply["error"].startswith(error)
    assert plane.version == before  # nothing was pushed


def test_a_good_op_changes_the_control_planes_state_and_status_shows_cert_faults():
    plane = ControlPlane(load_topology(shipped_topology_path("pair")))

    assert plane._operate(SetCertFault("b", "expired").to_json())["ok"] is True
    assert plane._operate(Status().to_json())["cert_faults"] == {"b": "expired"}
    assert plane._operate(SetCertFault("b", None).to_json())["ok"] is True
    assert plane._operate(Status().to_json())["cert_faults"] == {}


def test_what_is_replayed_after_a_control_plane_restart():
    assert [op.name for op in EXAMPLES if op.kept_for_replay] == [
        "set_traffic",
        "set_authorization",
        "set_mtls_mode",
        "set_outbound_tls",
        "set_cert_fault",
        "set_cert_fault",
    ]
    assert SetTraffic("b", {}).replay_key == SetTraffic("b", {"retry": {}}).replay_key  # the latest one wins
    with pytest.raises(OpError):
        op_from_json(["not", "a", "mapping"])
