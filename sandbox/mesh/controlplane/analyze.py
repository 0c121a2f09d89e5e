"""Named findings about a topology's mesh policy, in the spirit of `istioctl analyze`.

Each finding has a stable code (MESH001 ...), a severity ("error": it will visibly break
traffic; "warning": it likely does not do what was meant; "info": worth knowing), a subject
(the service or the call it is about) and a message in plain words. The parser refuses what
is malformed; this module points at what is well-formed but unwise.
"""

from __future__ import annotations

from sandbox.mesh.config.model import AuthorizationPolicy, AuthorizationRule, Service, Topology
from sandbox.mesh.config.schema import SchemaError
from sandbox.mesh.controlplane.analyze_traffic import _fault, _outlier, _retry
from sandbox.mesh.controlplane.findings import Finding, Severity, _finding

# Identities that call services without being services of the topology: the load generator
# speaks mTLS as the `loadgen` service account (the runtime's choice).
BUILTIN_SOURCES = ("loadgen",)


def analyze(topology: Topology) -> list[Finding]:
    """All findings for `topology`, sorted by code then subject."""
    findings: list[Finding] = []
    names = {service.name for service in topology.services}
    callers = _callers(topology)
    for service in topology.services:
        findings += _calls(service, names)
        findings += _mtls(service, callers.get(service.name, []), topology)
        findings += _retry(service)
        findings += _outlier(service)
        findings += _fault(service)
        findings += _authorization(service, callers.get(service.name, []), names, topology)
    findings += _cycles(topology)
    findings += _unreached(topology)
    findings += _policy_reach(topology)
    return sorted(findings, key=lambda f: (f.code, f.subject, f.message))


class RunRefused(SchemaError):
    """A topology `run` will not start: it has findings of severity error."""


def check_runnable(topology: Topology) -> list[Finding]:
    """The topology's findings, or RunRefused when any is an error: a call cycle fans every request
    out until the machine's file limit (1,331 open files in 4 s); a STRICT service behind a caller
    without a sidecar, or a call to no service, fails every request. `analyze` shows them all."""
    findings = analyze(topology)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        listed = "; ".join(f"{f.code} ({f.subject})" for f in errors[:5])
        more = f" and {len(errors) - 5} more" if len(errors) > 5 else ""
        raise RunRefused(
            "topology", f"refused to run, it has error findings: {listed}{more}; see `python -m sandbox.mesh analyze`"
        )
    return findings


def format_findings(findings: list[Finding]) -> str:
    """istioctl-like lines: `Error [MESH001] (payments) message`."""
    if not findings:
        return "No findings."
    return "\n".join(
        f"{finding.severity.capitalize()} [{finding.code}] ({finding.subject}) {finding.message}"
        for finding in findings
    )


def _callers(topology: Topology) -> dict[str, list[Service]]:
    callers: dict[str, list[Service]] = {}
    for service in topology.services:
        for callee in service.calls:
            callers.setdefault(callee, []).append(service)
    return callers


# --------------------------------------------------------------------------- calls


def _calls(service: Service, names: set[str]) -> list[Finding]:
    return [
        _finding(
            "MESH002",
            f"{service.name} -> {callee}",
            f"{service.name} calls {callee}, which is not a service of this topology "
            f"(known: {', '.join(sorted(names))}); every such call fails with no route (NR).",
        )
        for callee in service.calls
        if callee not in names
    ]


def _cycles(topology: Topology) -> list[Finding]:
    """A call cycle makes every request fan out forever (each service calls for each request).

    One depth-first walk: each back edge closes one cycle, reported once per set of services. Linear
    in services + calls (walking every simple path, as before, is factorial for a dense graph)."""
    graph = {service.name: list(service.calls) for service in topology.services}
    findings: list[Finding] = []
    seen_cycles: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # absent: unvisited, 1: on the current path, 2: done
    for root in graph:
        if root in state:
            continue
        path = [root]
        state[root] = 1
        stack = [iter(graph[root])]
        while stack:
            callee = next(stack[-1], None)
            if callee is None:
                stack.pop()
                state[path.pop()] = 2
                continue
            if callee not in graph:
                continue
            if state.get(callee) == 1:
                cycle = path[path.index(callee) :] + [callee]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    findings.append(
                        _finding(
                            "MESH008",
                            " -> ".join(cycle),
                            f"calls go round in a circle ({' -> '.join(cycle)}): every request would "
                            "call itself again until a timeout or the connection limits stop it.",
                        )
                    )
            elif callee not in state:
                state[callee] = 1
                path.append(callee)
                stack.append(iter(graph[callee]))
    return findings


def _unreached(topology: Topology) -> list[Finding]:
    by_name = {service.name: service for service in topology.services}
    reached, frontier = {topology.entry}, [topology.entry]
    while frontier:
        for callee in by_name[frontier.pop()].calls:
            if callee in by_name and callee not in reached:
                reached.add(callee)
                frontier.append(callee)
    return [
        _finding(
            "MESH017",
            service.name,
            f"{service.name} is not called from the entry {topology.entry}, directly or "
            "indirectly: the load generator's traffic never reaches it.",
        )
        for service in topology.services
        if service.name not in reached
    ]


# --------------------------------------------------------------------------- mTLS


def _mtls(service: Service, callers: list[Service], topology: Topology) -> list[Finding]:
    findings: list[Finding] = []
    if not service.sidecar:
        if service.mtls_mode != "DISABLE":
            findings.append(
                _finding(
                    "MESH010",
                    service.name,
                    f"{service.name} has no sidecar, so nothing can terminate mTLS: mtls "
                    f"{service.mtls_mode} has no effect (it is served in plaintext).",
                )
            )
        return findings
    if service.mtls_mode == "STRICT":
        for caller in callers:
            if not caller.sidecar:
                findings.append(
                    _finding(
                        "MESH001",
                        f"{caller.name} -> {service.name}",
                        f"{service.name} accepts only mTLS (STRICT) but {caller.name} has no sidecar "
                        "and sends plaintext: every call is refused at the handshake. Give "
                        f"{caller.name} a sidecar or make {service.name} PERMISSIVE while migrating.",
                    )
                )
    elif service.mtls_mode == "PERMISSIVE":
        findings.append(
            _finding(
                "MESH013",
                service.name,
                f"{service.name} is PERMISSIVE: it also accepts plaintext, with no caller identity. "
                "Switch to STRICT once every caller has a sidecar.",
            )
        )
    else:
        findings.append(
            _finding(
                "MESH014",
                service.name,
                f"{service.name} has a sidecar but mtls DISABLE: calls to it travel in plaintext and "
                "carry no verified identity.",
            )
        )
    return findings


# --------------------------------------------------------------------------- retries


# --------------------------------------------------------------------------- outlier detection


# --------------------------------------------------------------------------- faults


# --------------------------------------------------------------------------- authorization


def _source_matches(source: str, service: str, topology: Topology) -> bool:
    return source in (service, topology.spiffe_id(service))


def _rule_names(rule: AuthorizationRule, caller: str, topology: Topology) -> bool:
    return not rule.sources or any(_source_matches(s, caller, topology) for s in rule.sources)


def _fully_denied(policy: AuthorizationPolicy, caller: str, topology: Topology) -> bool:
    """True when no request at all from `caller` can pass `policy`."""
    for rule in policy.deny:
        if not rule.methods and not rule.paths and _rule_names(rule, caller, topology):
            return True
    if policy.allow:
        return not any(_rule_names(rule, caller, topology) for rule in policy.allow)
    return False


def _authorization(service: Service, callers: list[Service], names: set[str], topology: Topology) -> list[Finding]:
    policy = service.authorization
    if policy is None:
        return []
    findings: list[Finding] = []
    if not service.sidecar:
        findings.append(
            _finding(
                "MESH009",
                service.name,
                f"{service.name} has an authorization policy but no sidecar to enforce it: every "
                "request reaches the service.",
            )
        )
    known = set(names) | set(BUILTIN_SOURCES)
    known_ids = {topology.spiffe_id(name) for name in known}
    rules = [("allow", rule) for rule in policy.allow] + [("deny", rule) for rule in policy.deny]
    uses_sources = False
    for kind, rule in rules:
        for source in rule.sources:
            uses_sources = True
            if source not in known and source not in known_ids:
                findings.append(
                    _finding(
                        "MESH007",
                        service.name,
                        f"the {kind} rule of {service.name} names source {source!r}, which is no "
                        "workload of this topology: it never matches.",
                    )
                )
    if service.sidecar and uses_sources and service.mtls_mode != "STRICT":
        if service.mtls_mode == "DISABLE":
            effect = "no caller has an identity, so rules naming sources never match"
            severity: Severity = "warning"
        else:
            effect = "plaintext callers have no identity and are judged as anonymous"
            severity = "info"
        findings.append(
            _finding(
                "MESH012",
                service.name,
                f"{service.name}'s authorization names sources but its mtls is {service.mtls_mode}: {effect}.",
                severity,
            )
        )
    for caller in callers:
        if _fully_denied(policy, caller.name, topology):
            findings.append(
                _finding(
                    "MESH011",
                    f"{caller.name} -> {service.name}",
                    f"{caller.name} calls {service.name} for every request it serves, but "
                    f"{service.name}'s authorization refuses all of them: they get 403 (RBAC).",
                )
            )
    return findings


# --------------------------------------------------------------------------- policy reach


def _policy_reach(topology: Topology) -> list[Finding]:
    findings = []
    for caller in topology.services:
        if caller.sidecar:
            continue
        for callee_name in caller.calls:
            try:
                callee = topology.service(callee_name)
            except KeyError:
                continue
            traffic = callee.traffic
            configured = [
                label
                for label, present in (
                    ("timeout", traffic.timeout.request_timeout is not None),
                    ("retry", traffic.retry.attempts > 0),
                    (
                        "circuit breaker",
                        traffic.circuit_breaker.max_connections is not None
                        or traffic.circuit_breaker.max_pending_requests is not None,
                    ),
                    ("outlier detection", traffic.outlier_detection.consecutive_5xx is not None),
                    ("fault injection", traffic.fault.abort_percent > 0 or traffic.fault.delay_percent > 0),
                )
                if present
            ]
            if configured:
                findings.append(
                    _finding(
                        "MESH019",
                        f"{caller.name} -> {callee.name}",
                        f"{callee.name}'s {', '.join(configured)} policy is applied by callers' sidecars; "
                        f"{caller.name} has none, so its calls get none of it.",
                    )
                )
    return findings
