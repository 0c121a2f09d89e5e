"""The panel of actions in plain language, each a command of the engine's vocabulary for this topology.

The caller is the topology's entry service and the callee the first service it calls (pair: a -> b).
The engine validates every command (sandbox.mesh.runtime.commands.parse_command) and says why it refuses one.

Service names are words like "a" or "cart", so a label names each as "service a" (a bare "Make a send
plain text" reads as English and means nothing) and the button shows the name in code style (the template's
`service_names` filter, as in the command list).
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Action:
    name: str
    words: str  # the label with {caller} / {callee} where a service's name goes, after the word "service"
    command: dict
    services: dict[str, str] = field(default_factory=dict)  # placeholder -> service name

    @property
    def label(self) -> str:
        """Plain text: the button's accessible name, and what the command list says."""
        return self.words.format(**self.services)


def actions_for(topology) -> list[Action]:
    caller = topology.entry
    entry = next(service for service in topology.services if service.name == caller)
    callee = entry.calls[0] if entry.calls else caller
    both = {"caller": caller, "callee": callee}
    to_callee = {"callee": callee}
    from_caller = {"caller": caller}
    return [
        Action(
            "fail",
            "Inject 50% 503 errors at service {callee}",
            {"action": "fail", "service": callee, "percent": 50, "status": 503},
            to_callee,
        ),
        Action(
            "no-retries",
            "Remove the retries on calls to service {callee}",
            {"action": "policy", "service": callee, "traffic": {"retry": {"attempts": 0}}, "validate": True},
            to_callee,
        ),
        Action(
            "retries",
            "Add 3 retries with a 200 ms per-try timeout on calls to service {callee}",
            {
                "action": "policy",
                "service": callee,
                "traffic": {"retry": {"attempts": 3, "per_try_timeout": "200ms"}},
                "validate": True,
            },
            to_callee,
        ),
        Action(
            "slow", "Slow service {callee} down by 300 ms", {"action": "slow", "service": callee, "ms": 300}, to_callee
        ),
        Action(
            "strict",
            "Make service {callee} accept only mTLS (STRICT)",
            {"action": "mtls_mode", "service": callee, "mode": "STRICT"},
            to_callee,
        ),
        Action(
            "plaintext",
            "Make service {caller} send plain text (no mTLS)",
            {"action": "plaintext", "service": caller},
            from_caller,
        ),
        Action(
            "expired-cert",
            "Give service {caller} an expired certificate",
            {"action": "cert", "service": caller, "fault": "expired"},
            from_caller,
        ),
        Action(
            "deny",
            "Deny calls from service {caller} to service {callee}",
            {"action": "deny", "service": callee, "source": caller},
            both,
        ),
        Action(
            "kill-sidecar",
            "Kill the sidecar of service {callee}",
            {"action": "kill", "service": callee, "target": "sidecar", "replica": 0},
            to_callee,
        ),
        Action(
            "restart-sidecar",
            "Restart the sidecar of service {callee}",
            {"action": "restart", "service": callee, "target": "sidecar", "replica": 0},
            to_callee,
        ),
        Action(
            "rate-limit",
            "Limit service {callee} to 10 requests/s (bursts of 5)",
            {"action": "rate_limit", "service": callee, "rps": 10, "burst": 5},
            to_callee,
        ),
        Action("load-300", "Raise the load to 300 requests/s", {"action": "rate", "rps": 300}),
        Action("load-20", "Lower the load to 20 requests/s", {"action": "rate", "rps": 20}),
        Action("heal", "Heal everything", {"action": "heal"}),
    ]


def action_get(topology, name: str) -> Action | None:
    return next((action for action in actions_for(topology) if action.name == name), None)
