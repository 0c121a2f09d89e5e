"""The command vocabulary: one validator that names the field and the reason, a JSON spelling that reads back
to the same command, and plain words for each."""

import pytest

from sandbox.mesh.config.topology import load_topology, shipped_topology_path
from sandbox.mesh.runtime.commands import (
    ACTIONS,
    CommandError,
    Fail,
    Heal,
    Mesh,
    Policy,
    command_to_json,
    describe,
    parse_command,
)
from sandbox.mesh.runtime.supervisor import InProcessMesh, ProcessMesh

PAIR = load_topology(shipped_topology_path("pair"))

VALID = [
    {"action": "fail", "service": "b", "percent": 50, "status": 503},
    {"action": "fail", "service": "b", "percent": 10, "status": 500, "replica": 0},
    {"action": "slow", "service": "b", "ms": 200},
    {"action": "hang", "service": "b"},
    {"action": "heal", "service": "b"},
    {"action": "heal"},
    {"action": "kill", "service": "b", "target": "sidecar", "replica": 0},
    {"action": "restart", "service": "b", "target": "service", "replica": 0},
    {"action": "restart", "target": "control_plane", "replica": 0},
    {"action": "kill", "target": "control_plane", "replica": 0},
    {"action": "plaintext", "service": "a"},
    {"action": "mtls", "service": "a"},
    {"action": "mtls_mode", "service": "b", "mode": "PERMISSIVE"},
    {"action": "cert", "service": "a", "fault": "expired"},
    {"action": "cert", "service": "a", "fault": "none"},
    {"action": "deny", "service": "b", "source": "a"},
    {"action": "allow", "service": "b"},
    {"action": "rate", "rps": 300},
    {"action": "rate_limit", "service": "b", "rps": 10, "burst": 5},
    {"action": "rate_limit", "service": "b", "rps": 0.5, "burst": 1},
    {
        "action": "policy",
        "service": "b",
        "traffic": {"retry": {"attempts": 3, "per_try_timeout": 0.2}},
        "validate": True,
    },
    {"action": "policy", "service": "b", "traffic": {"retry": {"attempts": -1}}, "validate": False},
]


@pytest.mark.parametrize("data", VALID, ids=lambda d: d["action"])
def test_a_valid_command_reads_back_from_its_json(data):
    command = parse_command(data, PAIR)
    assert isinstance(command, ACTIONS[data["action"]])
    assert command_to_json(command) == data
    assert parse_command(command_to_json(command), PAIR) == command
    assert describe(command)


def test_every_action_has_an_example():
    assert {d["action"] for d in VALID} == set(ACTIONS)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"action": "explode"}, "action: unknown action 'explode'"),
        ({"service": "b"}, "action: unknown action None"),
        ("fail b", "a command must be a mapping"),
        ({"action": "fail", "service": "b"}, "fail needs percent"),
        ({"action": "fail", "service": "c", "percent": 5}, "service: unknown service 'c' (one of a, b)"),
        ({"action": "fail", "service": "b", "percent": 101}, "percent: must be a number from 0 to 100, got 101"),
        ({"action": "fail", "service": "b", "percent": True}, "percent: must be a number from 0 to 100, got True"),
        (
            {"action": "fail", "service": "b", "percent": 5, "status": 700},
            "status: must be a whole number from 400 to 599, got 700",
        ),
        ({"action": "fail", "service": "b", "percent": 5, "replica": 1}, "replica: b has replicas 0 to 0, got 1"),
        ({"action": "heal", "colour": "red"}, "unknown field(s) for heal: colour"),
        ({"action": "heal", "replica": 0}, "replica: needs a service"),
        ({"action": "kill", "service": "b", "target": "pod"}, "target: must be one of sidecar, service, control_plane"),
        ({"action": "kill", "target": "sidecar"}, "kill needs service"),
        ({"action": "mtls_mode", "service": "b", "mode": "strict"}, "mode: must be one of STRICT, PERMISSIVE, DISABLE"),
        ({"action": "cert", "service": "b", "fault": "stolen"}, "fault: must be one of expired, foreign_ca"),
        ({"action": "deny", "service": "b", "source": "mallory"}, "source: unknown service 'mallory'"),
        ({"action": "rate", "rps": 0}, "rps: must be more than 0, got 0"),
        ({"action": "rate", "rps": 10**9}, "rps: must be a number from 0 to 1000"),
        (
            {"action": "rate_limit", "service": "b", "rps": 0, "burst": 5},
            "rps: must be more than 0 requests per second, got 0",
        ),
        ({"action": "rate_limit", "service": "b", "rps": -3}, "rps: must be a number from 0 to 100000, got -3"),
        ({"action": "rate_limit", "service": "b", "rps": "fast"}, "rps: must be a number from 0 to 100000"),
        (
            {"action": "rate_limit", "service": "b", "rps": 10, "burst": 0},
            "burst: must be a whole number from 1 to 100000, got 0",
        ),
        ({"action": "rate_limit", "service": "b", "rps": 10, "burst": 2.5}, "burst: must be a whole number"),
        ({"action": "rate_limit", "service": "c", "rps": 10}, "service: unknown service 'c' (one of a, b)"),
        ({"action": "rate_limit", "rps": 10}, "rate_limit needs service"),
        (
            {"action": "policy", "service": "b", "traffic": {"retry": {"attempts": -1}}},
            "traffic.retry.attempts: must be a whole number from 0 to 10, got -1",
        ),
        (
            {"action": "policy", "service": "b", "traffic": {"retry": {"attempts": 1, "colour": 1}}},
            "traffic.retry.colour: unknown key; expected one of attempts, per_try_timeout",
        ),
        ({"action": "policy", "service": "b", "traffic": [], "validate": True}, "traffic: must be a mapping"),
        ({"action": "policy", "service": "b", "traffic": {}, "validate": "no"}, "validate: must be true or false"),
    ],
)
def test_a_bad_command_is_refused_naming_the_field_and_the_reason(data, message):
    with pytest.raises(CommandError) as caught:
        parse_command(data, PAIR)
    assert str(caught.value).startswith(message)


def test_the_error_carries_the_field_apart_from_the_reason():
    with pytest.raises(CommandError) as caught:
        parse_command({"action": "policy", "service": "b", "traffic": {"retry": {"attempts": 11}}}, PAIR)
    assert caught.value.field == "traffic.retry.attempts"
    assert caught.value.reason == "must be a whole number from 0 to 10, got 11"


def test_without_a_topology_only_the_shape_is_checked():
    assert parse_command({"action": "fail", "service": "zz", "percent": 5}, None) == Fail("zz", 5.0)
    with pytest.raises(CommandError, match="percent: must be a number"):
        parse_command({"action": "fail", "service": "zz", "percent": "lots"}, None)


def test_plain_words():
    assert describe(parse_command(VALID[0], PAIR)) == "service b fails 50% of requests with 503"
    assert describe(Heal()).startswith("everything back as the topology says")
    assert describe(parse_command({"action": "rate_limit", "service": "b", "rps": 10, "burst": 5}, PAIR)) == (
        "the sidecars of service b let in 10 requests per second (bursts of 5); the rest get 429 at once"
    )
    assert describe(Policy("b", {}, validate=False)) == "new traffic policy for calls to service b (pushed unchecked)"


def test_both_runtimes_offer_what_commands_need():
    assert isinstance(InProcessMesh(PAIR), Mesh)
    assert isinstance(ProcessMesh(PAIR, shipped_topology_path("pair")), Mesh)
