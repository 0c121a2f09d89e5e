"""Sidecars renew their short-lived certificates before expiry, and traffic keeps flowing across renewals."""

import asyncio
import json

import pytest

from mesh_support import call_entry, pair_topology, run, running_mesh, statuses

pytestmark = pytest.mark.integration


def test_certificates_rotate_before_expiry_without_breaking_traffic(tmp_path):
    path = pair_topology(tmp_path, b_traffic="retry:\n  attempts: 2\n")

    async def body():
        async with running_mesh(path, cert_ttl=3) as mesh:
            first = json.loads((await mesh.sidecar_admin("b", 0, "/config")).body)
            results = []
            for _ in range(10):  # 5 s: beyond the 3 s lifetime of the first certificates
                results += await call_entry(mesh, 1)
                await asyncio.sleep(0.5)
            status = await mesh.status()
            last = json.loads((await mesh.sidecar_admin("b", 0, "/config")).body)
            return first, last, results, status

    first, last, results, status = run(body())
    assert statuses(results) == {200: 10}
    assert all(s["renewals"] >= 2 for s in status["sidecars"]), status["sidecars"]
    assert last["version"] > first["version"]
