"""A sidecar's access log read through its cursor: each record once, numbered, the newest N when asked."""

import json

import pytest
from mesh_support import call_entry, pair_topology, run, running_in_process_mesh

pytestmark = pytest.mark.integration


async def read(mesh, query: str) -> list[dict]:
    body = (await mesh.sidecar_admin("a", 0, f"/access-log{query}")).body.decode()
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_the_cursor_returns_only_new_records(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_in_process_mesh(path) as mesh:
            await call_entry(mesh, 3)
            first = await read(mesh, "?since=0")
            cursor = max(r["seq"] for r in first)
            nothing = await read(mesh, f"?since={cursor}")
            await call_entry(mesh, 2)
            second = await read(mesh, f"?since={cursor}")
            newest = await read(mesh, "?since=0&limit=1")
            bad = await mesh.sidecar_admin("a", 0, "/access-log?since=yesterday")
            return first, nothing, second, newest, bad

    first, nothing, second, newest, bad = run(body(), 30)
    outbound = [r for r in first if r["direction"] == "outbound"]
    assert len(outbound) == 3 and [r["seq"] for r in first] == list(range(1, len(first) + 1))
    assert nothing == []
    assert [r["direction"] for r in second].count("outbound") == 2
    assert all(r["seq"] > max(x["seq"] for x in first) for r in second)
    assert newest == [second[-1]]
    assert bad.status == 400
    assert outbound[0]["tries"][0]["status"] == 200 and outbound[0]["tries"][0]["endpoint"]
