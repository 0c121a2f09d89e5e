"""The panel of actions in plain language, each a command of the engine's vocabulary for this topology.

The caller is the topology's entry service and the callee the first service it calls (pair: a -> b).
The engine validates every command (sandbox.mesh.commands.parse_command) and says why it refuses one.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    command: dict


def actions_for(topology) -> list[Action]:
    caller = topology.entry
    entry = next(service for service in topology.services if service.name == caller)
    callee = entry.calls[0] if entry.calls else caller
    return [
        Action(
            "fail",
            f"Inject 50% 503 errors at {callee}",
            {"action": "fail", "service": callee, "percent": 50, "status": 503},
        ),
        Action(
            "no-retries",
            f"Remove the retries on calls to {callee}",
            {"action": "policy", "service": callee, "traffic": {"retry": {"attempts": 0}}, "validate": True},
        ),
        Action(
            "retries",
            f"Add 3 retries with a 200 ms per-try timeout on calls to {callee}",
            {
                "action": "policy",
                "service": callee,
                "traffic": {"retry": {"attempts": 3, "per_try_timeout": "200ms"}},
                "validate": True,
            },
        ),
        Action("slow", f"Slow {callee} down by 300 ms", {"action": "slow", "service": callee, "ms": 300}),
        Action(
            "strict", f"Switch {callee} to STRICT mTLS", {"action": "mtls_mode", "service": callee, "mode": "STRICT"}
        ),
        Action("plaintext", f"Make {caller} send plain text (no mTLS)", {"action": "plaintext", "service": caller}),
        Action(
            "expired-cert",
            f"Give {caller} an expired certificate",
            {"action": "cert", "service": caller, "fault": "expired"},
        ),
        Action("deny", f"Deny {caller} → {callee}", {"action": "deny", "service": callee, "source": caller}),
        Action(
            "kill-sidecar",
            f"Kill {callee}'s sidecar",
            {"action": "kill", "service": callee, "target": "sidecar", "replica": 0},
        ),
        Action(
            "restart-sidecar",
            f"Restart {callee}'s sidecar",
            {"action": "restart", "service": callee, "target": "sidecar", "replica": 0},
        ),
        Action("load-300", "Raise the load to 300 requests/s", {"action": "rate", "rps": 300}),
        Action("load-20", "Lower the load to 20 requests/s", {"action": "rate", "rps": 20}),
        Action("heal", "Heal everything", {"action": "heal"}),
    ]


def action_get(topology, name: str) -> Action | None:
    return next((action for action in actions_for(topology) if action.name == name), None)
