"""Topology YAML: the shipped files load, and bad files are refused with the field path and reason."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from sandbox.mesh.config.model import AuthorizationRule, Topology
from sandbox.mesh.config.schema import SchemaError
from sandbox.mesh.config.topology import (
    dump_topology,
    load_topology,
    parse_duration,
    parse_topology,
    shipped_topology_path,
)

BASE = yaml.safe_load(
    """
name: t
entry: a
services:
  - name: a
    calls: [b]
  - name: b
    behaviour: {latency: 2ms}
    traffic:
      timeout: 2s
      retry: {attempts: 3, per_try_timeout: 400ms}
"""
)


def variant(*edits) -> dict:
    """BASE with edits applied; an edit is (path tuple, value) or (path tuple,) to delete."""
    doc = copy.deepcopy(BASE)
    for edit in edits:
        *parents, last = edit[0]
        target = doc
        for key in parents:
            target = target[key]
        if len(edit) == 1:
            del target[last]
        else:
            target[last] = edit[1]
    return doc


def refusal(doc) -> str:
    with pytest.raises(SchemaError) as caught:
        parse_topology(doc)
    return str(caught.value)


# ------------------------------------------------------------------ the shipped topologies


def test_pair_is_the_seed_a_calls_b():
    pair = load_topology(shipped_topology_path("pair"))
    assert pair.name == "pair" and pair.entry == "a"
    assert [s.name for s in pair.services] == ["a", "b"]
    assert pair.service("a").calls == ("b",)
    b = pair.service("b")
    assert b.traffic.retry.attempts == 3
    assert b.traffic.retry.per_try_timeout == pytest.approx(0.4)
    assert b.traffic.timeout.request_timeout == 2.0
    assert all(s.sidecar and s.mtls_mode == "STRICT" for s in pair.services)
    assert pair.spiffe_id("b") == "spiffe://meshlearn.local/ns/default/sa/b"


def test_shop_has_frontend_catalog_cart_payments():
    shop = load_topology(shipped_topology_path("shop"))
    assert shop.entry == "frontend"
    assert shop.service("frontend").calls == ("catalog", "cart")
    assert shop.service("cart").calls == ("payments",)
    catalog = shop.service("catalog")
    assert catalog.replicas == 3
    assert catalog.traffic.load_balancer == "least_request"
    assert catalog.traffic.outlier_detection.consecutive_5xx == 5
    assert catalog.traffic.outlier_detection.base_ejection_time == 10.0
    payments = shop.service("payments")
    assert payments.traffic.circuit_breaker.max_connections == 20
    assert payments.traffic.retry.retry_on == frozenset({"connect-failure"})
    assert payments.authorization.allow == (AuthorizationRule(sources=("cart",), methods=("POST", "GET")),)
    assert sum(s.replicas for s in shop.services) == 6


@pytest.mark.parametrize("name", ["pair", "shop"])
def test_shipped_topologies_survive_a_round_trip(name):
    topology = load_topology(shipped_topology_path(name))
    assert parse_topology(dump_topology(topology)) == topology
    # and through YAML text as well
    assert load_topology(yaml.safe_dump(dump_topology(topology))) == topology


def test_load_topology_takes_a_path_a_path_string_or_text():
    path = shipped_topology_path("pair")
    assert load_topology(path) == load_topology(str(path)) == load_topology(path.read_text())


def test_unknown_shipped_topology_names_the_available_ones():
    with pytest.raises(FileNotFoundError, match="pair, shop"):
        shipped_topology_path("bank")


# ------------------------------------------------------------------ defaults and friendly forms


def test_defaults_fill_what_is_left_out():
    topology = parse_topology({"name": "one", "entry": "a", "services": [{"name": "a"}]})
    assert isinstance(topology, Topology)
    service = topology.services[0]
    assert (service.replicas, service.sidecar, service.mtls_mode, service.calls) == (1, True, "STRICT", ())
    assert service.authorization is None
    assert topology.trust_domain == "meshlearn.local" and topology.namespace == "default"


def test_a_workload_without_sidecar_defaults_to_plaintext():
    topology = parse_topology(variant((("services", 0, "sidecar"), False)))
    assert topology.service("a").mtls_mode == "DISABLE"
    explicit = parse_topology(variant((("services", 0, "sidecar"), False), (("services", 0, "mtls"), "STRICT")))
    assert explicit.service("a").mtls_mode == "STRICT"  # kept; analyze reports it (MESH010)


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("250ms", 0.25), ("2s", 2.0), ("1.5s", 1.5), ("1m", 60.0), (2, 2.0), (0.5, 0.5), ("0ms", 0.0)],
)
def test_durations_in_units_or_seconds(written, seconds):
    assert parse_duration(written) == pytest.approx(seconds)


def test_durations_reach_the_model_in_seconds_and_latency_in_ms():
    topology = parse_topology(
        variant(
            (("services", 1, "traffic", "timeout"), 1.5),
            (("services", 1, "behaviour", "latency"), "0.25s"),
        )
    )
    b = topology.service("b")
    assert b.traffic.timeout.request_timeout == 1.5
    assert b.behaviour.latency_ms == pytest.approx(250.0)


def test_retry_on_as_istio_style_string():
    topology = parse_topology(variant((("services", 1, "traffic", "retry", "retry_on"), "5xx, reset")))
    assert topology.service("b").traffic.retry.retry_on == frozenset({"5xx", "reset"})


def test_full_policy_block_parses():
    traffic = {
        "load_balancer": "least_request",
        "timeout": "3s",
        "retry": {
            "attempts": 2,
            "per_try_timeout": "1s",
            "retry_on": ["gateway-error"],
            "backoff_base": "10ms",
            "backoff_max": "100ms",
            "budget_ratio": 0.5,
            "budget_min_per_second": 2,
        },
        "circuit_breaker": {"max_connections": 5, "max_pending_requests": 1},
        "outlier_detection": {"consecutive_5xx": 3, "base_ejection_time": "5s", "max_ejection_percent": 100},
        "fault": {"abort": {"percent": 10}, "delay": {"percent": 50, "duration": "100ms"}},
    }
    authorization = {
        "deny": [{"methods": ["DELETE"], "paths": ["/admin/*"]}],
        "allow": [{"sources": ["a", "spiffe://meshlearn.local/ns/default/sa/loadgen"]}],
    }
    b = parse_topology(
        variant((("services", 1, "traffic"), traffic), (("services", 1, "authorization"), authorization))
    ).service("b")
    assert b.traffic.retry.backoff_base == pytest.approx(0.01)
    assert b.traffic.retry.budget_ratio == 0.5
    assert b.traffic.circuit_breaker.max_pending_requests == 1
    assert b.traffic.outlier_detection.max_ejection_percent == 100
    assert (b.traffic.fault.abort_percent, b.traffic.fault.abort_status) == (10.0, 503)
    assert b.traffic.fault.delay_seconds == pytest.approx(0.1)
    assert b.authorization.deny[0].paths == ("/admin/*",)
    assert b.authorization.allow[0].sources[1].endswith("/sa/loadgen")


# ------------------------------------------------------------------ refusals, with the exact path

RETRY = ("services", 1, "traffic", "retry")
BOOLEAN_HINT = "(a YAML boolean; quote it if you meant text)"


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        (
            [(RETRY + ("attempts",), -1)],
            "services[1].traffic.retry.attempts: must be a whole number from 0 to 10, got -1",
        ),
        (
            [(RETRY + ("attempts",), 11)],
            "services[1].traffic.retry.attempts: must be a whole number from 0 to 10, got 11",
        ),
        (
            [(RETRY + ("attempts",), 2.5)],
            "services[1].traffic.retry.attempts: must be a whole number from 0 to 10, got 2.5",
        ),
        (
            [(RETRY + ("attempts",), True)],
            f"services[1].traffic.retry.attempts: must be a whole number from 0 to 10, got True {BOOLEAN_HINT}",
        ),
        ([(RETRY + ("attempts",),)], "services[1].traffic.retry.attempts: required"),
        (
            [(RETRY + ("per_try_timeout",), "fast")],
            "services[1].traffic.retry.per_try_timeout: must be a duration from 1ms to 300s "
            "(like 250ms, 2s or a number of seconds), got 'fast'",
        ),
        (
            [(RETRY + ("retry_on",), ["5xx", "timeout"])],
            "services[1].traffic.retry.retry_on[1]: must be one of 5xx, gateway-error, connect-failure, "
            "reset, retriable-4xx, got 'timeout'",
        ),
        (
            [(RETRY + ("retry_on",), "5xx,bogus")],
            "services[1].traffic.retry.retry_on: must be one of 5xx, gateway-error, connect-failure, "
            "reset, retriable-4xx, got 'bogus'",
        ),
        (
            [(RETRY + ("retry_on",), [])],
            "services[1].traffic.retry.retry_on: must name at least one of 5xx, gateway-error, "
            "connect-failure, reset, retriable-4xx",
        ),
        (
            [(RETRY + ("backoff_base",), "300ms"), (RETRY + ("backoff_max",), "100ms")],
            "services[1].traffic.retry.backoff_max: must not be below backoff_base (300ms), got 100ms",
        ),
        (
            [(RETRY + ("budget_ratio",), 1.5)],
            "services[1].traffic.retry.budget_ratio: must be a number from 0 to 1, got 1.5",
        ),
        (
            [(RETRY + ("max_retries",), 3)],
            "services[1].traffic.retry.max_retries: unknown key; expected one of attempts, per_try_timeout, "
            "retry_on, backoff_base, backoff_max, budget_ratio, budget_min_per_second",
        ),
        (
            [(("services", 1, "traffic", "timeout"), "2 seconds")],
            "services[1].traffic.timeout: must be a duration from 1ms to 300s "
            "(like 250ms, 2s or a number of seconds), got '2 seconds'",
        ),
        (
            [(("services", 1, "traffic", "timeout"), 0)],
            "services[1].traffic.timeout: must be a duration from 1ms to 300s "
            "(like 250ms, 2s or a number of seconds), got 0",
        ),
        (
            [(("services", 1, "traffic", "timeout"), -1)],
            "services[1].traffic.timeout: must be a duration from 1ms to 300s "
            "(like 250ms, 2s or a number of seconds), got -1",
        ),
        (
            [(("services", 1, "traffic", "timeout"), "10m")],
            "services[1].traffic.timeout: must be a duration from 1ms to 300s "
            "(like 250ms, 2s or a number of seconds), got '10m'",
        ),
        ([(("services", 1, "traffic"), None)], "services[1].traffic: must be a mapping, got nothing"),
        (
            [(("services", 1, "traffic", "load_balancer"), "random")],
            "services[1].traffic.load_balancer: must be one of round_robin, least_request, got 'random'",
        ),
        (
            [(("services", 1, "traffic", "circuit_breaker"), {})],
            "services[1].traffic.circuit_breaker: give max_connections and/or max_pending_requests",
        ),
        (
            [(("services", 1, "traffic", "circuit_breaker"), {"max_connections": 0})],
            "services[1].traffic.circuit_breaker.max_connections: must be a whole number from 1 to 100000, got 0",
        ),
        (
            [(("services", 1, "traffic", "outlier_detection"), {"consecutive_5xx": 5, "max_ejection_percent": 150})],
            "services[1].traffic.outlier_detection.max_ejection_percent: must be a whole number from 0 to 100, got 150",
        ),
        (
            [(("services", 1, "traffic", "outlier_detection"), {"base_ejection_time": "30s"})],
            "services[1].traffic.outlier_detection.consecutive_5xx: required",
        ),
        (
            [(("services", 1, "traffic", "fault"), {"abort": {"percent": 120}})],
            "services[1].traffic.fault.abort.percent: must be a number from 0 to 100, got 120",
        ),
        (
            [(("services", 1, "traffic", "fault"), {"abort": {"percent": 5, "status": 200}})],
            "services[1].traffic.fault.abort.status: must be a whole number from 400 to 599, got 200",
        ),
        (
            [(("services", 1, "traffic", "fault"), {"delay": {"percent": 5}})],
            "services[1].traffic.fault.delay.duration: required",
        ),
        ([(("services", 1, "traffic", "fault"), {})], "services[1].traffic.fault: give abort and/or delay"),
        (
            [(("services", 1, "behaviour", "error_rate"), 1.5)],
            "services[1].behaviour.error_rate: must be a number from 0 to 1, got 1.5",
        ),
        (
            [(("services", 1, "behaviour", "error_status"), 200)],
            "services[1].behaviour.error_status: must be a whole number from 400 to 599, got 200",
        ),
        (
            [(("services", 1, "behaviour", "latency"), "90s")],
            "services[1].behaviour.latency: must be a duration from 0ms to 60s "
            "(like 250ms, 2s or a number of seconds), got '90s'",
        ),
        (
            [(("services", 1, "behaviour", "hang"), "sometimes")],
            "services[1].behaviour.hang: must be true or false, got 'sometimes'",
        ),
        (
            [(("services", 0, "replica"), 2)],
            "services[0].replica: unknown key; expected one of name, replicas, calls, sidecar, mtls, "
            "behaviour, traffic, authorization",
        ),
        ([(("services", 0, "replicas"), 0)], "services[0].replicas: must be a whole number from 1 to 10, got 0"),
        ([(("services", 0, "replicas"), "3")], "services[0].replicas: must be a whole number from 1 to 10, got '3'"),
        ([(("services", 0, "name"),)], "services[0].name: required"),
        (
            [(("services", 0, "name"), "Frontend")],
            "services[0].name: must be lower-case letters, digits and '-', starting with a letter, got 'Frontend'",
        ),
        ([(("services", 1, "name"), "a")], "services[1].name: duplicate service name 'a' (also services[0])"),
        ([(("services", 0, "calls"), "b")], "services[0].calls: must be a list, got 'b'"),
        ([(("services", 0, "calls"), ["b", "b"])], "services[0].calls[1]: 'b' is listed twice"),
        (
            [(("services", 0, "mtls"), "strict")],
            "services[0].mtls: must be one of STRICT, PERMISSIVE, DISABLE, got 'strict'",
        ),
        (
            [(("services", 0, "mtls"), False)],
            f"services[0].mtls: must be one of STRICT, PERMISSIVE, DISABLE, got False {BOOLEAN_HINT}",
        ),
        ([(("services", 0, "sidecar"), "maybe")], "services[0].sidecar: must be true or false, got 'maybe'"),
        (
            [(("services", 1, "authorization"), {})],
            "services[1].authorization: give allow and/or deny rules (an empty policy would allow everything)",
        ),
        (
            [(("services", 1, "authorization"), {"allow": [{"methods": ["get"]}]})],
            "services[1].authorization.allow[0].methods[0]: must be one of GET, POST, PUT, PATCH, DELETE, "
            "HEAD, OPTIONS, got 'get'",
        ),
        (
            [(("services", 1, "authorization"), {"deny": [{"paths": ["/a*b"]}]})],
            "services[1].authorization.deny[0].paths[0]: '*' is only allowed at the end (a prefix match), got '/a*b'",
        ),
        (
            [(("services", 1, "authorization"), {"deny": [{"paths": ["admin"]}]})],
            "services[1].authorization.deny[0].paths[0]: must be a URL path starting with '/', got 'admin'",
        ),
        (
            [(("services", 1, "authorization"), {"allow": [{"sources": ["spiffe://meshlearn.local/"]}]})],
            "services[1].authorization.allow[0].sources[0]: a workload SPIFFE ID needs a path after the "
            "trust domain: 'spiffe://meshlearn.local/'",
        ),
        (
            [(("services", 1, "authorization"), {"allow": [{"sources": ["A B"]}]})],
            "services[1].authorization.allow[0].sources[0]: must be a service name or a SPIFFE ID "
            "(spiffe://...), got 'A B'",
        ),
        (
            [(("services", 1, "authorization"), {"allow": [{"who": ["a"]}]})],
            "services[1].authorization.allow[0].who: unknown key; expected one of sources, methods, paths",
        ),
        ([(("name",),)], "name: required"),
        ([(("entry",), "c")], "entry: no service named 'c'; services are a, b"),
        ([(("service",), [])], "service: unknown key; expected one of name, entry, services, trust_domain, namespace"),
        ([(("services",), [])], "services: must list 1 to 16 services, got 0"),
        ([(("services",), {"a": {}})], "services: must be a list, got a mapping"),
        (
            [(("trust_domain",), "Mesh.Local")],
            "trust_domain: trust domain must be lower-case letters, digits, '.', '-' or '_', got 'Mesh.Local'",
        ),
        (
            [(("namespace",), "my_ns")],
            "namespace: must be lower-case letters, digits and '-', starting with a letter, got 'my_ns'",
        ),
    ],
)
def test_malformed_topology_is_refused_with_the_field_path(edits, message):
    assert refusal(variant(*edits)) == message


def test_error_exposes_path_and_reason_separately():
    with pytest.raises(SchemaError) as caught:
        parse_topology(variant((RETRY + ("attempts",), -1)))
    assert caught.value.path == "services[1].traffic.retry.attempts"
    assert caught.value.reason == "must be a whole number from 0 to 10, got -1"


def test_too_many_replicas_in_all_are_refused():
    doc = variant((("services",), [{"name": f"s{i}", "replicas": 10} for i in range(3)]), (("entry",), "s0"))
    assert refusal(doc) == "services: at most 24 replicas in all (each is a process pair), got 30"


def test_top_level_must_be_a_mapping():
    with pytest.raises(SchemaError, match=r"^\(top level\): must be a mapping, got a list$"):
        load_topology("- a\n- b\n")


def test_yaml_syntax_errors_name_the_line():
    with pytest.raises(SchemaError) as caught:
        load_topology("name: t\nentry: a b: c\nservices: []\n")
    assert str(caught.value) == "line 2, column 11: not valid YAML: mapping values are not allowed here"


def test_duplicate_keys_are_refused_not_silently_merged():
    text = "name: t\nentry: a\nservices:\n  - name: a\n    replicas: 2\n    replicas: 3\n"
    with pytest.raises(SchemaError) as caught:
        load_topology(text)
    assert str(caught.value) == "line 6, column 5: duplicate key 'replicas' (first given on line 5)"


def test_yaml_booleans_are_explained(tmp_path: Path):
    path = tmp_path / "t.yaml"
    path.write_text("name: t\nentry: a\nservices:\n  - name: a\n    mtls: off\n")
    with pytest.raises(SchemaError, match=r"services\[0\]\.mtls: .*got False \(a YAML boolean"):
        load_topology(path)


def test_python_tags_are_not_executed():
    with pytest.raises(SchemaError, match="not valid YAML"):
        load_topology("name: !!python/object/apply:os.system ['true']\nentry: a\nservices: []\n")


# ------------------------------------------------------------------ the documentation stays true

README = Path(__file__).resolve().parents[3] / "sandbox" / "mesh" / "topologies" / "README.md"


def readme_policy_examples() -> list[str]:
    section = README.read_text().split("## One example per policy", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```yaml\n")[1:]]


def test_every_policy_example_in_the_readme_parses():
    examples = readme_policy_examples()
    assert len(examples) == 9
    for example in examples:
        data = yaml.safe_load(example)
        if isinstance(data, list):  # whole services
            parse_topology({"name": "doc", "entry": data[0]["name"], "services": data})
        else:  # a block of one service
            parse_topology(
                {"name": "doc", "entry": "a", "services": [{"name": "a", "calls": ["b"]}, {"name": "b", **data}]}
            )


def test_the_schema_in_the_module_docstring_parses():
    import sandbox.mesh.config.topology as module

    lines = module.__doc__.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("    name: "))
    block = []
    for line in lines[start:]:
        if line and not line.startswith("    "):
            break
        block.append(line[4:])
    topology = load_topology("\n".join(block))
    cart = topology.service("cart")
    assert cart.traffic.retry.attempts == 3
    assert cart.authorization.deny[0].paths == ("/admin/*",)
