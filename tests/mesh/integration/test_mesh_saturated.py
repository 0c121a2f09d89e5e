"""On a saturated machine the mesh slows down but does not collapse, and it serves normally once the CPU is back.

The issue's collapse was metastable: handshakes timed out on a busy CPU, every timed-out request threw its
connection away and the next one made a new mTLS handshake, which cost more CPU, so more timed out. Here the
box is saturated on purpose (bounded CPU burners, killed by pid) while `shop` takes 100 req/s from the
load generator. What is asserted is behaviour, not timing: the TLS handshakes the sidecars accept stay few
next to the requests (no reconnect storm), and once the burners stop some 5-second stretch is back at >= 99%
within a generous 20 s.
"""

import asyncio
import time

import pytest
from cpu_burners import cpu_burners, default_count
from mesh_support import run, running_mesh, stats

from sandbox.mesh.config.topology import shipped_topology_path
from sandbox.mesh.runtime.loadgen import LoadGenerator

pytestmark = [pytest.mark.integration, pytest.mark.saturates]
RATE = 100.0
WARM = 4.0  # seconds of load before the burners start: the connections a calm box needs
SATURATED = 15.0  # seconds the burners spin
AFTER = 25.0  # seconds of load after they stop
WINDOW = 5.0
WITHIN = 20.0
# Each request crosses 4 mTLS hops, and a storm makes a handshake for every try that timed out: 0.49 per request
# was measured here before the fix, at 61% success. Pools that only grow to the concurrency they need stay far
# below (0.01-0.09 measured, depending on what else the machine runs).
MAX_HANDSHAKES_PER_REQUEST = 0.2


async def _inbound_handshakes(mesh) -> int:
    """TLS handshakes every sidecar's inbound has started so far (counted where they cost, at the server)."""
    total = 0
    for service, replica in sorted(key for key, rep in mesh.replicas.items() if rep.sidecar):
        for _ in range(10):  # the admin port answers late on a saturated box: ask again, never give up early
            try:
                total += (await stats(mesh, service, replica))["inbound_handshakes"]
                break
            except (TimeoutError, OSError):
                await asyncio.sleep(0.5)
        else:
            raise AssertionError(f"the sidecar of {service}-{replica} never answered /stats")
    return total


def _success(samples, start: float, end: float) -> tuple[int, float | None]:
    taken = [s for s in samples if start <= s.scheduled < end]
    return len(taken), (sum(200 <= s.status < 300 for s in taken) / len(taken) if taken else None)


def _first_recovered_window(samples, after: float) -> float | None:
    """Seconds from `after` to the start of the first WINDOW-long stretch at >= 99%, trying each 0.5 s step."""
    step = 0.0
    while step <= WITHIN:
        count, success = _success(samples, after + step, after + step + WINDOW)
        if count >= RATE * WINDOW * 0.9 and success is not None and success >= 0.99:
            return step
        step += 0.5
    return None


@pytest.mark.timeout(300)  # 44 s of load, plus a mesh start and stop on a saturated box
def test_shop_on_a_saturated_box_makes_no_handshake_storm_and_recovers_after(tmp_path):
    async def body():
        async with running_mesh(shipped_topology_path("shop")) as mesh:
            load = LoadGenerator(
                "127.0.0.1",
                mesh.entry_ports(),
                rate=RATE,
                host_header=mesh.topology.entry,
                ssl_context=await mesh.entry_ssl_context(),
            )
            try:
                running = asyncio.create_task(load.run(WARM + SATURATED + AFTER))
                await asyncio.sleep(WARM)
                before = await _inbound_handshakes(mesh)
                burn_start = time.monotonic() - load.start_time
                with cpu_burners(seconds=SATURATED + 30):  # each also stops by itself, should this test die
                    await asyncio.sleep(SATURATED)
                    burn_end = time.monotonic() - load.start_time
                during = await _inbound_handshakes(mesh) - before
                samples = await running
            finally:
                load.close()
            return samples, during, burn_start, burn_end

    samples, handshakes, burn_start, burn_end = run(body(), 180)
    sent, success_burning = _success(samples, burn_start, burn_end)
    recovered_after = _first_recovered_window(samples, burn_end)
    print(
        f"\nburners={default_count()} requests while burning={sent} success={success_burning}"
        f" handshakes={handshakes} per request={handshakes / max(sent, 1):.3f}"
        f" recovered {recovered_after} s after the burners stopped"
    )
    assert sent >= RATE * SATURATED * 0.9, sent  # the load really ran through the saturation
    # No reconnect storm: connections are reused through timeouts, and failed handshakes back off.
    assert handshakes <= MAX_HANDSHAKES_PER_REQUEST * sent, (handshakes, sent)
    assert recovered_after is not None, [
        (step, _success(samples, burn_end + step, burn_end + step + WINDOW)) for step in range(0, int(WITHIN) + 1, 5)
    ]
