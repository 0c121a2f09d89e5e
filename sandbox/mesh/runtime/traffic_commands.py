"""The traffic-management commands (issue 15's): one typed declaration each, registered in ACTIONS like
the others in commands.py, which imports this module so that `parse_command` knows them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from sandbox.mesh.config.model import RateLimitPolicy, Topology
from sandbox.mesh.config.schema import FIELDS, dump_traffic, expect_number, expect_whole
from sandbox.mesh.controlplane.ops import SetTraffic
from sandbox.mesh.runtime.command_base import (
    Command,
    CommandError,
    LoadControl,
    Mesh,
    _checked,
    _show,
    _sidecar_service,
    _whole_numbers_as_int,
)

# From the policy schema: the command takes what a topology's `traffic.rate_limit` may say.
LIMIT_RATE = FIELDS["rate_limit.requests_per_second"]
LIMIT_BURST = FIELDS["rate_limit.burst"]


@dataclass(frozen=True)
class RateLimit(Command):
    """`service`'s own sidecars let in `rps` requests per second with bursts of `burst`; the rest get 429 RL.

    It is set on top of the traffic policy the topology gives `service` (a `policy` command may carry a
    `rate_limit` block of its own, in the same spelling); `heal` takes it away."""

    action: ClassVar[str] = "rate_limit"
    service: str
    rps: float
    burst: int = 1

    @classmethod
    def parse(cls, d: dict, topology: Topology | None) -> RateLimit:
        service = _sidecar_service(d["service"], topology)
        rps = _checked(expect_number, d["rps"], "rps", 0, LIMIT_RATE.high)
        if rps <= 0:
            raise CommandError("rps", f"must be more than 0 requests per second, got {_show(d['rps'])}")
        burst = _checked(expect_whole, d.get("burst", LIMIT_BURST.default), "burst", 1, int(LIMIT_BURST.high))
        return cls(service, rps, burst)

    def describe(self) -> str:
        return (
            f"the sidecars of service {self.service} let in {self.rps:g} requests per second "
            f"(bursts of {self.burst}); the rest get 429 at once"
        )

    async def apply(self, mesh: Mesh, load: LoadControl | None) -> None:
        limit = RateLimitPolicy(self.rps, self.burst)
        traffic = replace(mesh.topology.service(self.service).traffic, rate_limit=limit)
        await mesh.operate(SetTraffic(self.service, dump_traffic(traffic)))

    def to_json(self) -> dict[str, Any]:
        return _whole_numbers_as_int(super().to_json(), "rps")


TrafficCommand = RateLimit  # grows into a union as issue 15's other commands land
