"""Labs speak the engine's command vocabulary (EXPERIMENT_API.md); this is the one door to its validator.

TEMPORARY until `sandbox.mesh.commands` (branch engine-runtime) is on main: a stand-in validator over the
scenario module's action table. Once it lands, `command_problem` and `command_words` call
`parse_command` / `describe` and nothing else here is needed.
"""

from __future__ import annotations

from sandbox.mesh.scenario import ACTIONS, REQUIRED
from sandbox.mesh.topology import Topology

_TARGETS = {"sidecar", "service"}
_MODES = {"STRICT", "PERMISSIVE", "DISABLE"}
_CERT_FAULTS = {"expired", "foreign_ca", "wrong_spiffe", "none"}


def command_problem(data: object, topology: Topology) -> str | None:
    """None when `data` is a command the engine accepts on `topology`, else "field: reason"."""
    if not isinstance(data, dict):
        return "must be a mapping like {action: fail, service: b, percent: 50}"
    action = data.get("action")
    if action not in ACTIONS:
        return f"action: unknown action {action!r} (one of {', '.join(sorted(ACTIONS))})"
    unknown = sorted(set(data) - ACTIONS[action] - {"action"})
    if unknown:
        return f"{', '.join(unknown)}: not a field of {action}"
    missing = sorted(REQUIRED.get(action, set()) - set(data))
    if missing:
        return f"{', '.join(missing)}: {action} needs it"
    names = {service.name for service in topology.services}
    for key in ("service", "source"):
        if key in data and data[key] not in names:
            return f"{key}: {data[key]!r} is not a service of {topology.name} ({', '.join(sorted(names))})"
    if "percent" in data and not (isinstance(data["percent"], (int, float)) and 0 <= data["percent"] <= 100):
        return f"percent: a number from 0 to 100, got {data['percent']!r}"
    if "ms" in data and not (isinstance(data["ms"], (int, float)) and 0 <= data["ms"] <= 60000):
        return f"ms: a number of milliseconds from 0 to 60000, got {data['ms']!r}"
    if "target" in data and data["target"] not in _TARGETS:
        return f"target: sidecar or service, got {data['target']!r}"
    if action == "mtls_mode" and data["mode"] not in _MODES:
        return f"mode: STRICT, PERMISSIVE or DISABLE, got {data['mode']!r}"
    if action == "cert" and data["fault"] not in _CERT_FAULTS:
        return f"fault: expired, foreign_ca, wrong_spiffe or none, got {data['fault']!r}"
    if action == "rate" and not (isinstance(data["rps"], (int, float)) and 0 < data["rps"] <= 1000):
        return f"rps: a number from 1 to 1000, got {data['rps']!r}"
    if action == "policy" and not isinstance(data["traffic"], dict):
        return "traffic: must be a mapping of traffic policy fields"
    return None
