"""STRICT refuses plaintext, PERMISSIVE accepts it; a workload switched to plaintext cannot reach a STRICT peer."""

import pytest
from mesh_support import access_log, call_entry, pair_topology, run, running_mesh, stats, statuses

from sandbox.mesh.config.model import UpstreamError
from sandbox.mesh.dataplane import http1

pytestmark = pytest.mark.integration


async def plaintext_get(port: int) -> int:
    """Status of a plain-HTTP GET, or 0 when the connection is dropped without an answer."""
    try:
        return (await http1.simple_request("127.0.0.1", port, "GET", "/", headers={"host": "b"}, timeout=3)).status
    except (UpstreamError, OSError):
        return 0


def test_strict_refuses_a_plaintext_client_and_permissive_accepts_it(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_mesh(path) as mesh:
            b_inbound = mesh.replicas[("b", 0)].inbound_port
            strict_status = await plaintext_get(b_inbound)
            strict_stats = await stats(mesh, "b")
            log = await access_log(mesh, "b")
            await mesh.set_mtls_mode("b", "PERMISSIVE")
            await mesh.wait_in_sync()
            permissive_status = await plaintext_get(b_inbound)
            mtls_still_works = statuses(await call_entry(mesh, 3))
            return strict_status, strict_stats, log, permissive_status, mtls_still_works

    strict_status, strict_stats, log, permissive_status, mtls_still_works = run(body())
    assert strict_status == 0
    assert strict_stats["tls_failures"] == {"plaintext sent to mTLS port": 1}
    assert any("plaintext sent to mTLS port" in r["detail"] for r in log)
    assert permissive_status == 200
    assert mtls_still_works == {200: 3}


def test_a_workload_switched_to_plaintext_cannot_reach_its_strict_peer(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_mesh(path) as mesh:
            before = statuses(await call_entry(mesh, 2))
            await mesh.set_outbound_tls("a", False)
            await mesh.wait_in_sync()
            during = statuses(await call_entry(mesh, 3))
            a_log = await access_log(mesh, "a")
            b_stats = await stats(mesh, "b")
            await mesh.set_mtls_mode("b", "PERMISSIVE")
            await mesh.wait_in_sync()
            permissive = statuses(await call_entry(mesh, 2))
            return before, during, a_log, b_stats, permissive

    before, during, a_log, b_stats, permissive = run(body())
    assert before == {200: 2}
    assert during == {502: 3}  # A answers 502 because its call to B failed
    failed = [r for r in a_log if r["direction"] == "outbound" and r["status"] == 503]
    assert failed and all(set(r["flags"].split(",")) & {"UC", "UF"} for r in failed)
    assert b_stats["tls_failures"].get("plaintext sent to mTLS port", 0) >= 3
    assert permissive == {200: 2}
