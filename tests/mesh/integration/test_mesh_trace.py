"""W3C traceparent: one trace id across every hop, a new span id at each sidecar."""

import pytest
from mesh_support import access_log, pair_topology, run, running_mesh

from sandbox.mesh.config.model import Request
from sandbox.mesh.dataplane import http1

pytestmark = pytest.mark.integration
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def test_the_trace_id_survives_every_hop_and_each_hop_has_its_own_span(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_mesh(path) as mesh:
            pool = http1.ConnectionPool("127.0.0.1", mesh.entry_ports()[0], ssl_context=await mesh.entry_ssl_context())
            try:
                response = await pool.request(Request("GET", "/", {"traceparent": INCOMING}), "a")
            finally:
                pool.close()
            return response, await access_log(mesh, "a"), await access_log(mesh, "b")

    response, a_log, b_log = run(body())
    assert response.status == 200
    hops = [r for r in a_log + b_log if r["traceparent"]]
    assert len(hops) == 3  # a inbound, a outbound, b inbound
    assert all(r["traceparent"].split("-")[1] == TRACE_ID for r in hops), hops
    spans = {r["traceparent"].split("-")[2] for r in hops}
    assert len(spans) == 3 and "00f067aa0ba902b7" not in spans
    a_in = next(r for r in a_log if r["direction"] == "inbound")
    assert a_in["parent_span_id"] == "00f067aa0ba902b7"
    a_out = next(r for r in a_log if r["direction"] == "outbound")
    b_in = next(r for r in b_log if r["direction"] == "inbound")
    # A parent chain: caller -> a inbound -> (service a) -> a outbound -> b inbound.
    assert a_out["parent_span_id"] == a_in["traceparent"].split("-")[2]
    assert b_in["parent_span_id"] == a_out["traceparent"].split("-")[2]
