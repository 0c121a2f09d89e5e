"""One policy schema: the topology YAML and the JSON pushed to sidecars accept exactly the same policies.

The table lists every disagreement the two parsers used to have (each accepted by one and refused by
the other); the property test shows there is no other: whatever the topology parser accepts, a
sidecar decodes to the same policy and can build its stack from, and whatever a sidecar accepts, the
topology parser accepts.
"""

from __future__ import annotations

import json
import random

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.mesh.config import schema
from sandbox.mesh.config.model import Request, Response
from sandbox.mesh.config.schema import SchemaError, parse_traffic
from sandbox.mesh.config.topology import load_topology
from sandbox.mesh.controlplane.meshconfig import authorization_from_dict, sidecar_config_from_dict, to_jsonable
from sandbox.mesh.dataplane.stack import outbound_stack
from sandbox.mesh.dataplane.telemetry import SidecarTelemetry
from sandbox.mesh.process import token_digest
from sandbox.mesh.runtime.commands import CommandError, parse_command
from sandbox.mesh.runtime.service import ServiceApp, behaviour_from_dict


def topology_text(b: dict) -> str:
    """A two-service topology in YAML whose service b (services[1]) carries `b`'s keys."""
    return yaml.safe_dump({"name": "t", "entry": "a", "services": [{"name": "a", "calls": ["b"]}, {"name": "b", **b}]})


def from_topology(b: dict):
    """(service b, None) if the topology parser accepts it, else (None, reason)."""
    try:
        return load_topology(topology_text(b)).service("b"), None
    except SchemaError as exc:
        assert exc.path.startswith("services[1]."), exc
        return None, exc.reason


def pushed(traffic, authorization=None) -> dict:
    """A whole push as the control plane sends it, through JSON."""
    doc = {
        "version": 1,
        "service": "a",
        "mtls_mode": "STRICT",
        "outbound_tls": True,
        "authorization": authorization,
        "destinations": {"b": {"traffic": traffic, "endpoints": [], "sidecar": True}},
        "certificate": {"cert_pem": "", "key_pem": "", "spiffe_id": ""},
        "root_pem": "",
    }
    return json.loads(json.dumps(doc))


def sidecar_accepts(traffic):
    """(TrafficPolicy, None) if a sidecar decodes the push, else (None, reason)."""
    try:
        return sidecar_config_from_dict(pushed(traffic)).destinations["b"].traffic, None
    except SchemaError as exc:
        assert exc.path.startswith("config.destinations.b.traffic"), exc
        return None, exc.reason


# ------------------------------------------------------------------ every disagreement there was


DISAGREEMENTS = {
    # name: (key of service b, its value, reason both give)
    "budget ratio 5": ("traffic", {"retry": {"attempts": 2, "budget_ratio": 5}}, "must be a number from 0 to 1, got 5"),
    "abort status 200": (
        "traffic",
        {"fault": {"abort": {"percent": 10, "status": 200}}},
        "must be a whole number from 400 to 599, got 200",
    ),
    "timeout 1000 s": (
        "traffic",
        {"timeout": 1000},
        "must be a duration from 1ms to 300s (like 250ms, 2s or a number of seconds), got 1000",
    ),
    "max_pending 0": (
        "traffic",
        {"circuit_breaker": {"max_pending_requests": 0}},
        "must be a whole number from 1 to 100000, got 0",
    ),
    "backoff max below its base": (
        "traffic",
        {"retry": {"attempts": 2, "backoff_base": 0.3, "backoff_max": 0.1}},
        "must not be below backoff_base (300ms), got 100ms",
    ),
    "a 100 s delay": (
        "traffic",
        {"fault": {"delay": {"percent": 5, "duration": 100}}},
        "must be a duration from 0ms to 60s (like 250ms, 2s or a number of seconds), got 100",
    ),
    "backoff_base 15s": (
        "traffic",
        {"retry": {"attempts": 2, "backoff_base": "15s"}},
        "must be a duration from 1ms to 10s (like 250ms, 2s or a number of seconds), got '15s'",
    ),
    "methods [FETCH]": (
        "authorization",
        {"deny": [{"methods": ["FETCH"]}]},
        "must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, got 'FETCH'",
    ),
    "a path without a leading /": (
        "authorization",
        {"deny": [{"paths": ["admin/*"]}]},
        "must be a URL path starting with '/', got 'admin/*'",
    ),
}


@pytest.mark.parametrize("case", list(DISAGREEMENTS))
def test_what_the_topology_refuses_every_sidecar_refuses_with_the_same_reason(case):
    key, value, reason = DISAGREEMENTS[case]
    service, topology_reason = from_topology({key: value})
    assert service is None and topology_reason == reason
    with pytest.raises(SchemaError) as caught:
        if key == "traffic":
            sidecar_config_from_dict(pushed(value))
        else:
            sidecar_config_from_dict(pushed({}, authorization=value))
    assert caught.value.reason == reason
    assert caught.value.path.startswith("config.")


def test_a_behaviour_flag_false_as_text_is_refused_not_read_as_hang():
    # bool("false") is True: the old run-time update made the service hang.
    with pytest.raises(SchemaError) as caught:
        behaviour_from_dict({"hang": "false"})
    assert str(caught.value) == "behaviour.hang: must be true or false, got 'false'"
    assert from_topology({"behaviour": {"hang": "false"}}) == (None, "must be true or false, got 'false'")
    assert behaviour_from_dict({"hang": False}).hang is False


def test_the_service_admin_endpoint_answers_400_to_a_text_flag_and_keeps_its_behaviour():
    app = ServiceApp("b", admin_token_digest=token_digest("operator"))
    answer = app._admin(
        Request("POST", "/_mesh/behaviour", headers={"authorization": "Bearer operator"}, body=b'{"hang": "false"}')
    )
    assert isinstance(answer, Response) and answer.status == 400
    assert b"behaviour.hang: must be true or false" in answer.body
    assert app.behaviour.hang is False


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"latency_ms": 90_000}, "behaviour.latency_ms: must be a number from 0 to 60000, got 90000"),
        ({"error_rate": 2}, "behaviour.error_rate: must be a number from 0 to 1, got 2"),
        ({"error_status": 200}, "behaviour.error_status: must be a whole number from 400 to 599, got 200"),
        ({"latency": 5}, "behaviour.latency: unknown key; expected one of latency_ms, error_rate, error_status, hang"),
    ],
)
def test_run_time_behaviour_changes_use_the_topology_bounds(patch, message):
    with pytest.raises(SchemaError) as caught:
        behaviour_from_dict(patch)
    assert str(caught.value) == message


# ------------------------------------------------------------------ one duration parser


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("200ms", 0.2), ("2s", 2.0), ("1.5", 1.5), (1.5, 1.5), (3, 3.0), ("1m", 60.0), (" 5 s ", 5.0), ("0", 0.0)],
)
def test_one_duration_parser_reads_every_spelling(written, seconds):
    from sandbox.mesh.config.topology import parse_duration
    from sandbox.mesh.runtime.scenario import parse_time

    assert schema.parse_duration(written) == pytest.approx(seconds)
    assert parse_duration is schema.parse_duration
    assert parse_time(written, "at") == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["soon", "-1s", "1h", True, None, [1], float("inf"), -2, "9" * 5000, "huge int"])
def test_the_duration_parser_refuses_with_a_value_error(bad):
    bad = 10**5000 if bad == "huge int" else bad
    with pytest.raises(ValueError):
        schema.parse_duration(bad)


# ------------------------------------------------------------------ forms


def test_a_form_gets_label_unit_bounds_default_and_help_for_every_traffic_field():
    rows = {row["key"]: row for row in (f.form() for f in schema.TRAFFIC_FIELDS)}
    assert set(rows) == {f.key for f in schema.TRAFFIC_FIELDS}
    attempts = rows["retry.attempts"]
    assert (attempts["label"], attempts["min"], attempts["max"], attempts["default"]) == ("Retries", 0, 10, 0)
    assert rows["timeout"]["unit"] == "s" and rows["timeout"]["max"] == 300.0
    assert rows["retry.retry_on"]["default"] == ["5xx", "connect-failure", "reset"]
    assert all(row["label"] and row["help"] for row in rows.values())


def test_a_form_value_is_checked_by_the_same_field_with_its_own_path():
    field = schema.FIELDS["retry.attempts"]
    with pytest.raises(SchemaError) as caught:
        field.parse(-1, "form.retry.attempts")
    assert str(caught.value) == "form.retry.attempts: must be a whole number from 0 to 10, got -1"


# ------------------------------------------------------------------ the property: no disagreement is left


def _valid(field: schema.Field):
    """Values a field should accept, in each of its spellings."""
    if field.kind == "whole":
        return st.integers(int(field.low), int(field.high))
    if field.kind == "number":
        return st.one_of(st.floats(field.low, field.high), st.integers(int(field.low), int(field.high)))
    if field.kind == "duration":
        seconds = st.floats(max(field.low, 0.001), field.high).map(lambda s: round(s, 3))
        return st.one_of(
            seconds,
            seconds.map(lambda s: f"{s * 1000:.0f}ms"),
            seconds.map(lambda s: f"{s:g}s"),
            seconds.map(lambda s: f"{s:g}"),
        )
    if field.kind == "choice":
        return st.sampled_from(field.choices)
    if field.kind == "conditions":
        return st.one_of(
            st.lists(st.sampled_from(field.choices), min_size=1, max_size=3, unique=True), st.just("5xx,reset")
        )
    raise AssertionError(field.kind)


def _invalid(field: schema.Field):
    """Values beyond a field's bounds, and of wrong types."""
    wrong = st.sampled_from([None, True, "false", "abc", [], {}, -1, 10**40])
    if field.kind == "whole":
        return st.one_of(st.sampled_from([int(field.low) - 1, int(field.high) + 1, 2.5]), wrong)
    if field.kind == "number":
        return st.one_of(st.sampled_from([field.low - 0.5, field.high + 0.5, float("inf")]), wrong)
    if field.kind == "duration":
        return st.one_of(st.sampled_from([field.high + 1, f"{field.high + 1:g}s", "2 seconds", "-1s", "1h"]), wrong)
    if field.kind == "choice":
        return st.one_of(st.sampled_from(["random", "ROUND_ROBIN"]), wrong)
    if field.kind == "conditions":
        return st.one_of(st.sampled_from([["timeout"], [], "5xx, bogus", ""]), wrong)
    raise AssertionError(field.kind)


def _values(field: schema.Field):
    # Mostly valid, so that about half the documents are accepted and the accepted branch is exercised.
    return st.integers(0, 14).flatmap(lambda roll: _invalid(field) if roll == 0 else _valid(field))


def _nest(flat: dict) -> dict:
    doc: dict = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        target = doc
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return doc


def _group(prefix: str):
    """One block of a traffic document (its required fields present), or None for no block."""
    fields = [f for f in schema.TRAFFIC_FIELDS if f.key.startswith(prefix) and "." not in f.key[len(prefix) :]]
    block = st.fixed_dictionaries(
        {f.key: _values(f) for f in fields if f.required},
        optional={f.key: _values(f) for f in fields if not f.required},
    )
    return block if not prefix else st.one_of(st.none(), block)


def _document(blocks: list) -> dict:
    flat = {k: v for block in blocks if block for k, v in block.items()}
    return _nest(flat)


traffic_documents = (
    st.tuples(
        *(_group(p) for p in ("", "retry.", "circuit_breaker.", "outlier_detection.", "fault.abort.", "fault.delay."))
    )
    .map(list)
    .map(_document)
    .flatmap(
        # Sometimes a key no spelling knows, at the top or inside a block; sometimes an empty block.
        lambda doc: st.sampled_from(
            [doc] * 8 + [{**doc, "retries": 1}, {**doc, "fault": {"abrt": {}}}, {**doc, "circuit_breaker": {}}]
        )
    )
)


def _sidecar_can_build(policy) -> None:
    outbound_stack(
        policy=policy,
        endpoints=list,
        send=None,
        clock=lambda: 0.0,
        sleep=None,
        rng=random.Random(1),
        telemetry=SidecarTelemetry("a"),
        destination="b",
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic_documents)
def test_whatever_the_topology_accepts_every_sidecar_accepts_and_the_reverse(doc):
    service, topology_reason = from_topology({"traffic": doc})
    sidecar_policy, sidecar_reason = sidecar_accepts(doc)
    assert topology_reason == sidecar_reason
    # A scenario step or a form's `policy` command is checked by the same parser, with the same reason.
    try:
        parse_command({"action": "policy", "service": "b", "traffic": doc}, None)
        command_reason = None
    except CommandError as exc:
        command_reason = exc.reason
    assert command_reason == topology_reason
    if service is None:
        return
    assert sidecar_policy == service.traffic
    # What the control plane really pushes for that topology: it decodes to the same policy, and a
    # sidecar builds its stack from it.
    pushed_policy, reason = sidecar_accepts(to_jsonable(service.traffic))
    assert reason is None and pushed_policy == service.traffic
    assert parse_traffic(json.loads(json.dumps(to_jsonable(service.traffic)))) == service.traffic
    _sidecar_can_build(pushed_policy)


authorization_documents = st.fixed_dictionaries(
    {},
    optional={
        kind: st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "sources": st.lists(
                        st.sampled_from(
                            ["a", "B", "spiffe://meshlearn.local/ns/default/sa/a", "spiffe://x/", "a\n", 3]
                        ),
                        max_size=2,
                    ),
                    "methods": st.lists(st.sampled_from(["GET", "FETCH", "get", "DELETE"]), max_size=2),
                    "paths": st.lists(st.sampled_from(["/admin/*", "admin", "/a*b", "/", "/x y"]), max_size=2),
                },
            ),
            max_size=2,
        )
        for kind in ("allow", "deny")
    },
)


@settings(max_examples=200, deadline=None)
@given(authorization_documents)
def test_authorization_the_topology_accepts_is_what_sidecars_accept(doc):
    service, topology_reason = from_topology({"authorization": doc})
    try:
        decoded, sidecar_reason = authorization_from_dict(json.loads(json.dumps(doc))), None
    except SchemaError as exc:
        decoded, sidecar_reason = None, exc.reason
    assert topology_reason == sidecar_reason
    if service is not None:
        assert decoded == service.authorization
        assert authorization_from_dict(json.loads(json.dumps(to_jsonable(service.authorization)))) == decoded


# ------------------------------------------------------------------ one message


def test_a_bad_value_gets_the_same_message_in_every_spelling():
    assert (
        str(pytest.raises(SchemaError, load_topology, topology_text({"traffic": {"retry": {"attempts": -1}}})).value)
        == "services[1].traffic.retry.attempts: must be a whole number from 0 to 10, got -1"
    )
    assert (
        str(pytest.raises(SchemaError, parse_traffic, {"retry": {"attempts": -1}}, "b.traffic").value)
        == "b.traffic.retry.attempts: must be a whole number from 0 to 10, got -1"
    )


def test_a_refusal_is_one_bounded_line_even_for_a_huge_value():
    with pytest.raises(SchemaError) as caught:
        parse_traffic({"load_balancer": "x" * 100_000 + "\nsecond line"})
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300
    with pytest.raises(SchemaError) as caught:
        parse_traffic({"retry": {"attempts": 10**5000}})
    assert str(caught.value) == (
        "traffic.retry.attempts: must be a whole number from 0 to 10, got a number with more than 30 digits"
    )


def test_the_control_plane_refuses_an_outbound_tls_flag_written_as_text():
    from sandbox.mesh.controlplane.control_plane import ControlPlane

    plane = ControlPlane(load_topology(topology_text({})))
    reply = plane._operate({"op": "set_outbound_tls", "service": "a", "enabled": "false"})
    assert reply == {"ok": False, "error": "a.outbound_tls: must be true or false, got 'false'"}
    assert plane.policies["a"].outbound_tls is True
    assert plane._operate({"op": "set_outbound_tls", "service": "a", "enabled": False})["ok"] is True
    assert plane.policies["a"].outbound_tls is False
