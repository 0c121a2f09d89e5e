"""Topology and scenario files as an attacker or a careless hand writes them: each is refused with one
short line naming the field (or line) and the reason, never a traceback, and never slowly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.mesh.config.files import MAX_FILE_BYTES
from sandbox.mesh.config.schema import SchemaError
from sandbox.mesh.config.topology import load_topology, parse_topology
from sandbox.mesh.controlplane.analyze import RunRefused, analyze, check_runnable
from sandbox.mesh.runtime.scenario import ScenarioError, load_scenario, parse_scenario

REPO = Path(__file__).resolve().parents[3]
GOOD = "name: t\nentry: a\nservices:\n  - name: a\n"


def refused(text_or_path) -> str:
    with pytest.raises(SchemaError) as caught:
        load_topology(text_or_path)
    message = str(caught.value)
    assert "\n" not in message and len(message) <= 700, message
    return message


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# ------------------------------------------------------------------ values that used to raise something else


def test_a_5000_digit_integer_is_refused_not_a_value_error():
    message = refused(GOOD + "    replicas: " + "9" * 5000 + "\n")
    assert message == "line 5, column 15: a number with more than 100 digits"


def test_a_40_digit_integer_reaches_the_schema_and_is_shown_short():
    message = refused(GOOD + "    replicas: " + "9" * 40 + "\n")
    assert message == "services[0].replicas: must be a whole number from 1 to 10, got a number with more than 30 digits"


@pytest.mark.parametrize("opening, closing", [("[", "]"), ("{a: ", "}")])
def test_deep_nesting_is_refused_not_a_recursion_error(opening, closing):
    depth = 50_000
    message = refused(GOOD + "    calls: " + opening * depth + closing * depth + "\n")
    assert message.endswith("nested more than 32 levels deep")


def test_non_utf8_bytes_are_refused_not_a_unicode_decode_error(tmp_path):
    path = write(tmp_path, "t.yaml", GOOD.encode() + b"    calls: [\xff\xfe]\n")
    assert refused(path) == f"{path}: is not UTF-8 text (byte {len(GOOD) + 12} is 0xff)"


def test_a_list_as_a_key_is_refused_not_a_type_error():
    message = refused(GOOD + "    ? [x, y]\n    : 1\n")
    assert message == "line 5, column 7: a key must be a plain value, not a list or a mapping"


def test_a_missing_file_is_refused_not_file_not_found(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert refused(missing) == f"{missing}: no such file"
    assert refused(str(missing)) == f"{missing}: no such file"


def test_a_directory_is_refused(tmp_path):
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    assert refused(folder) == f"{folder}: is a directory, not a file"


def test_a_path_not_ending_in_yaml_is_not_parsed_as_yaml_text(tmp_path):
    path = write(tmp_path, "topology.txt", GOOD)
    assert refused(str(path)) == f"{path}: a topology or scenario file's name must end in .yaml or .yml"
    assert refused("pair") == "pair: a topology or scenario file's name must end in .yaml or .yml"


def test_a_file_above_the_size_limit_is_refused_unread(tmp_path):
    path = write(tmp_path, "big.yaml", GOOD + "#" * (MAX_FILE_BYTES + 1) + "\n")
    assert refused(path) == f"{path}: is larger than 256 KiB; a mesh file is a few KiB"


def test_a_file_at_the_limit_is_read(tmp_path):
    text = GOOD + "#" * (MAX_FILE_BYTES - len(GOOD) - 1) + "\n"
    assert len(text.encode()) == MAX_FILE_BYTES
    assert load_topology(write(tmp_path, "edge.yaml", text)).name == "t"


def test_yml_suffix_is_a_file_too(tmp_path):
    assert load_topology(write(tmp_path, "t.yml", GOOD)).entry == "a"


# ------------------------------------------------------------------ YAML features


def test_merge_keys_work_and_a_merged_key_can_be_overridden():
    text = (
        "name: t\n"
        "entry: a\n"
        "services:\n"
        "  - &base\n"
        "    name: a\n"
        "    replicas: 2\n"
        "    behaviour: {latency: 5ms}\n"
        "  - <<: *base\n"
        "    name: b\n"
        "    replicas: 3\n"
    )
    topology = load_topology(text)
    assert [(s.name, s.replicas, s.behaviour.latency_ms) for s in topology.services] == [("a", 2, 5.0), ("b", 3, 5.0)]


def test_a_key_given_twice_is_still_refused_next_to_a_merge():
    text = "name: t\nentry: a\nservices:\n  - &a {name: a}\n  - <<: *a\n    replicas: 2\n    replicas: 3\n"
    assert refused(text) == "line 7, column 5: duplicate key 'replicas' (first given on line 6)"


@pytest.mark.parametrize("key", ["name", "entry", "namespace"])
def test_names_ending_in_a_newline_are_refused(key):
    doc = {"name": "t", "entry": "a", "namespace": "default", "services": [{"name": "a"}]}
    doc[key] = doc[key] + "\n"
    with pytest.raises(SchemaError) as caught:
        parse_topology(doc)
    assert caught.value.path == key
    assert "\n" not in str(caught.value)


def test_a_service_name_or_source_ending_in_a_newline_is_refused():
    with pytest.raises(SchemaError, match=r"^services\[0\]\.name: "):
        parse_topology({"name": "t", "entry": "a", "services": [{"name": "a\n"}]})
    with pytest.raises(SchemaError, match=r"^services\[0\]\.authorization\.allow\[0\]\.sources\[0\]: "):
        parse_topology(
            {"name": "t", "entry": "a", "services": [{"name": "a", "authorization": {"allow": [{"sources": ["b\n"]}]}}]}
        )


# ------------------------------------------------------------------ bounded in length and in time


def test_a_huge_value_is_truncated_in_the_message():
    message = refused(GOOD + "    mtls: " + "X" * 100_000 + "\n")
    assert message.startswith("services[0].mtls: must be one of STRICT, PERMISSIVE, DISABLE, got 'XXX")
    assert message.endswith("...")


def test_a_calls_list_of_40000_entries_is_checked_in_linear_time():
    # It took 81 s when each entry was looked up in the list of those before it.
    callees = [f"s{i}" for i in range(40_000)]
    topology = parse_topology({"name": "t", "entry": "a", "services": [{"name": "a", "calls": callees}]})
    assert len(topology.service("a").calls) == 40_000
    assert sum(f.code == "MESH002" for f in analyze(topology)) == 40_000
    with pytest.raises(SchemaError) as caught:
        parse_topology({"name": "t", "entry": "a", "services": [{"name": "a", "calls": callees + ["s7"]}]})
    assert str(caught.value) == "services[0].calls[40000]: 's7' is listed twice"


def test_a_dense_call_graph_is_analysed_without_walking_every_path():
    # 16 services that all call each other have 15! simple paths; one walk finds the cycles.
    names = [f"s{i}" for i in range(16)]
    topology = parse_topology(
        {"name": "t", "entry": "s0", "services": [{"name": n, "calls": [m for m in names if m != n]} for n in names]}
    )
    cycles = [f for f in analyze(topology) if f.code == "MESH008"]
    assert cycles and all(f.subject.startswith("s") for f in cycles)


# ------------------------------------------------------------------ run refuses what cannot run


def test_run_refuses_a_topology_with_an_error_finding():
    cycle = parse_topology(
        {"name": "t", "entry": "a", "services": [{"name": "a", "calls": ["b"]}, {"name": "b", "calls": ["a"]}]}
    )
    with pytest.raises(RunRefused) as caught:
        check_runnable(cycle)
    assert "MESH008 (a -> b -> a)" in str(caught.value)
    fine = parse_topology({"name": "t", "entry": "a", "services": [{"name": "a", "calls": ["b"]}, {"name": "b"}]})
    assert check_runnable(fine) == []


def test_retries_with_no_timeout_at_all_are_a_warning_not_a_refusal():
    topology = parse_topology(
        {
            "name": "t",
            "entry": "a",
            "services": [{"name": "a", "calls": ["b"]}, {"name": "b", "traffic": {"retry": {"attempts": 3}}}],
        }
    )
    findings = check_runnable(topology)
    assert [(f.code, f.severity) for f in findings] == [("MESH020", "warning")]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sandbox.mesh", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "content, expected",
    [
        (
            "name: t\nentry: a\nservices:\n  - {name: a, replicas: 0}\n",
            "error: services[0].replicas: must be a whole number from 1 to 10, got 0",
        ),
        (
            "name: t\nentry: a\nservices:\n  - {name: a, calls: [a]}\n",
            "error: topology: refused to run, it has error findings: MESH008 (a -> a); "
            "see `python -m sandbox.mesh analyze`",
        ),
    ],
)
def test_the_command_line_prints_one_line_and_exits_non_zero(tmp_path, content, expected):
    done = _cli("run", str(write(tmp_path, "bad.yaml", content)), "--duration", "1")
    assert done.returncode == 2
    assert done.stdout == "" and done.stderr == expected + "\n"


def test_the_command_line_refuses_a_missing_file_and_a_bad_scenario_in_one_line(tmp_path):
    done = _cli("analyze", str(tmp_path / "nope.yaml"))
    assert (done.returncode, done.stderr) == (2, f"error: {tmp_path / 'nope.yaml'}: no such file\n")
    topology = write(tmp_path, "ok.yaml", "name: t\nentry: a\nservices:\n  - {name: a}\n")
    scenario = write(tmp_path, "s.yaml", b"actions:\n  - {at: \xff, action: heal, service: a}\n")
    done = _cli("run", str(topology), "--scenario", str(scenario), "--duration", "1")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: {scenario}: is not UTF-8 text (byte 18 is 0xff)"]
    assert "Traceback" not in done.stdout + done.stderr


# ------------------------------------------------------------------ scenario files get the same reader


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("s.txt", "actions: []\n", "a topology or scenario file's name must end in .yaml or .yml"),
        ("s.yaml", b"actions: [\xc3]\n", "is not UTF-8 text (byte 10 is 0xc3)"),
        ("s.yaml", "#" * (MAX_FILE_BYTES + 1), "is larger than 256 KiB; a mesh file is a few KiB"),
    ],
)
def test_a_scenario_file_is_read_as_carefully_as_a_topology(tmp_path, name, content, reason):
    path = write(tmp_path, name, content)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value) == f"{path}: {reason}"


def test_a_missing_scenario_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="nope.yaml: no such file$"):
        load_scenario(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "actions:\n  - {at: " + "9" * 5000 + ", action: heal, service: b}\n",
            "line 2, column 10: a number with more than 100 digits",
        ),
        ("actions: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 32 levels deep"),
        ("actions:\n  - ? [a]\n    : 1\n", "line 2, column 7: a key must be a plain value, not a list or a mapping"),
        ("actions: []\nactions: []\n", "line 2, column 1: duplicate key 'actions' (first given on line 1)"),
        ("actions:\n  - {at: 2h, action: heal, service: b}\n", "actions[0].at: must be a duration from 0ms to 3600s"),
    ],
)
def test_scenario_text_is_refused_in_one_line(text, message):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, SchemaError)


@pytest.mark.parametrize(
    "text, message",
    [
        ("actions:\n  - {at: 1, action: [a]}\n", "actions[0].action: unknown action a list"),
        ("actions:\n  - {at: 1, action: {x: 1}}\n", "actions[0].action: unknown action a mapping"),
    ],
)
def test_a_scenario_action_that_is_a_list_or_mapping_is_refused_not_a_type_error(text, message):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text)
    assert str(caught.value).startswith(message)


def test_a_command_with_a_huge_number_is_refused_not_an_overflow():
    from sandbox.mesh.runtime.commands import CommandError, parse_command

    with pytest.raises(CommandError) as caught:
        parse_command({"action": "fail", "service": "b", "percent": 10**400}, None)
    assert str(caught.value) == "percent: must be a number from 0 to 100, got a number with more than 30 digits"
