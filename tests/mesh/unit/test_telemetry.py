"""Telemetry: Prometheus text that prometheus_client parses, access-log flags, traceparent, spans."""

from __future__ import annotations

import asyncio
import random

import pytest
from mesh_fakes import FakeClock, endpoints, request, run
from prometheus_client.parser import text_string_to_metric_families

from sandbox.mesh.config.flags import FLAG_EXPLANATIONS, Flags
from sandbox.mesh.config.model import Response
from sandbox.mesh.dataplane.layers.access import access_layer
from sandbox.mesh.dataplane.telemetry import (
    Histogram,
    SidecarTelemetry,
    next_traceparent,
    parse_traceparent,
)

ENVOY_FLAGS = {"UF", "UO", "URX", "UT", "UH", "NR", "FI", "DI", "DC", "UC", "RBAC"}
INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def samples(text):
    rows = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            rows.setdefault(sample.name, []).append((sample.labels, sample.value))
    return rows


def record(telemetry, status, flags=(), duration=0.002, destination="b", attempt=1):
    req = request(destination=destination)
    req.endpoint = endpoints(count=1)[0]
    req.attempt = attempt
    response = Response(status, body=b"x" * 3, flags=set(flags), detail="why" if flags else "")
    return telemetry.record_request(
        direction="outbound",
        request=req,
        response=response,
        started=1_700_000_000.25,
        duration=duration,
        traceparent=INCOMING,
    )


def test_every_envoy_flag_has_a_plain_explanation():
    assert ENVOY_FLAGS <= set(FLAG_EXPLANATIONS)
    assert all(len(text) > 20 for text in FLAG_EXPLANATIONS.values())


def test_flags_render_like_envoy():
    assert Flags(set()).text == "-"
    assert Flags({"UT"}).text == "UT"
    assert Flags({"UF", "URX"}).text == "UF,URX"


def test_request_counters_and_histogram_parse_with_prometheus_client():
    telemetry = SidecarTelemetry("a")
    for _ in range(3):
        record(telemetry, 200, duration=0.0007)
    record(telemetry, 503, {"URX", "UF"}, duration=0.3)
    rows = samples(telemetry.render_prometheus())
    counts = {(line["status"], line["response_flags"]): v for line, v in rows["mesh_requests_total"]}
    assert counts == {("200", "-"): 3.0, ("503", "UF,URX"): 1.0}
    buckets = {line["le"]: v for line, v in rows["mesh_request_duration_seconds_bucket"]}
    assert buckets["0.0005"] == 0 and buckets["0.001"] == 3 and buckets["0.25"] == 3
    assert buckets["0.5"] == 4 and buckets["+Inf"] == 4
    assert rows["mesh_request_duration_seconds_count"][0][1] == 4
    assert rows["mesh_request_duration_seconds_sum"][0][1] == pytest.approx(0.3021)


def test_tls_failures_are_counted_by_reason_even_with_awkward_characters():
    telemetry = SidecarTelemetry("b")
    telemetry.record_tls_failure("certificate expired")
    telemetry.record_tls_failure("certificate expired")
    telemetry.record_tls_failure('unknown ca "other"\\x', direction="outbound")
    rows = samples(telemetry.render_prometheus())
    by_reason = {line["reason"]: v for line, v in rows["mesh_tls_handshake_failures_total"]}
    assert by_reason == {"certificate expired": 2.0, 'unknown ca "other"\\x': 1.0}
    lines = telemetry.render_access_log().splitlines()
    assert len(lines) == 2  # the two inbound failures; the outbound one shows on its request's line
    assert all("TLS handshake failed: certificate expired" in line for line in lines)
    assert '"- - -" 0' in lines[0]


def test_access_log_line_carries_status_flags_attempts_upstream_and_trace():
    telemetry = SidecarTelemetry("a")
    entry = record(telemetry, 503, {"URX", "UF"}, attempt=4)
    line = entry.render()
    assert line.startswith('[2023-11-14T22:13:20.250Z] outbound "GET / HTTP/1.1" 503 UF,URX 3 2.0 ')
    assert '"127.0.0.1:40000"' in line and "a -> b" in line and "attempts=4" in line
    assert '"why"' in line and INCOMING in line
    assert [flag for flag, _ in entry.flag_explanations()] == ["UF", "URX"]


def test_access_log_is_bounded():
    telemetry = SidecarTelemetry("a", log_size=5)
    for status in range(200, 210):
        record(telemetry, status)
    assert [r.status for r in telemetry.access_log()] == [205, 206, 207, 208, 209]
    assert len(telemetry.access_log(limit=2)) == 2


def test_next_traceparent_keeps_the_trace_and_makes_a_new_span():
    rng = random.Random(1)
    outgoing = next_traceparent(INCOMING, rng)
    trace_id, span_id, trace_flags = parse_traceparent(outgoing)
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" and trace_flags == "01"
    assert span_id != "00f067aa0ba902b7" and len(span_id) == 16


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "garbage",
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    ],
)
def test_a_missing_or_invalid_traceparent_starts_a_new_trace(bad):
    outgoing = next_traceparent(bad, random.Random(2))
    parsed = parse_traceparent(outgoing)
    assert parsed is not None and parsed[0] != "4bf92f3577b34da6a3ce929d0e0e4736"


def test_the_access_layer_sends_a_child_span_and_records_it():
    telemetry = SidecarTelemetry("a", rng=random.Random(3))
    seen = {}

    async def inner(req):
        seen["traceparent"] = req.headers["traceparent"]
        return Response(200)

    handler = access_layer(inner, telemetry=telemetry, direction="outbound", clock=FakeClock())
    run(handler(request(headers={"traceparent": INCOMING})))
    (span,) = telemetry.spans()
    assert span.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.parent_span_id == "00f067aa0ba902b7"
    assert seen["traceparent"] == f"00-{span.trace_id}-{span.span_id}-01"
    assert span.name == "outbound b"


def test_a_caller_that_goes_away_is_logged_with_dc():
    telemetry = SidecarTelemetry("a")

    async def hang(req):
        await asyncio.sleep(10)

    async def scenario():
        handler = access_layer(hang, telemetry=telemetry, direction="inbound", clock=FakeClock())
        task = asyncio.create_task(handler(request()))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    (entry,) = telemetry.access_log()
    assert (entry.status, entry.flags, entry.direction) == (0, "DC", "inbound")


def test_histogram_quantile_gives_the_bucket_bound():
    histogram = Histogram()
    for value in [0.0004] * 90 + [0.2] * 10:
        histogram.observe(value)
    assert histogram.quantile(0.5) == 0.0005
    assert histogram.quantile(0.99) == 0.25


def test_requests_to_unknown_hosts_do_not_grow_the_metric_label_set():
    # A caller (or a scanner) sending random Host headers must not mint a time series per name.
    from sandbox.mesh.dataplane.stack import no_route_stack

    telemetry = SidecarTelemetry("a")
    handler = no_route_stack(telemetry=telemetry)
    rng = random.Random(7)
    names = [f"host-{rng.getrandbits(32):08x}" for _ in range(50)]
    for name in names:
        assert run(handler(request(destination=name))).flags == {"NR"}
    rows = samples(telemetry.render_prometheus())
    assert {labels["destination"] for labels, _ in rows["mesh_requests_total"]} == {"unknown"}
    assert rows["mesh_requests_total"] == [
        (
            {
                "workload": "a",
                "direction": "outbound",
                "source": "a",
                "destination": "unknown",
                "status": "404",
                "response_flags": "NR",
            },
            50.0,
        )
    ]
    assert {labels["destination"] for labels, _ in rows["mesh_request_duration_seconds_count"]} == {"unknown"}
    # The access log (bounded) still says which name was asked for.
    assert [entry.destination for entry in telemetry.access_log()] == names


def test_an_inbound_caller_is_named_by_the_service_in_its_spiffe_id_else_unknown():
    telemetry = SidecarTelemetry("b")
    for identity in ("spiffe://meshlearn.local/ns/default/sa/frontend", "spiffe://meshlearn.local/odd", ""):
        telemetry.record_request(
            direction="inbound",
            request=request(source_identity=identity),
            response=Response(200),
            started=0.0,
            duration=0.001,
            traceparent="",
        )
    assert [entry.source for entry in telemetry.access_log()] == ["frontend", "unknown", "unknown"]
