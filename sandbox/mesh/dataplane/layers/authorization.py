"""Authorization layer: allows or denies a request by its source identity, method and path (403 RBAC).

Istio's AuthorizationPolicy in small: deny rules are checked first; then, if there are allow
rules, a request must match one of them. An empty field in a rule matches anything. Paths are
matched in their normalised form (sandbox/mesh/dataplane/paths.py), so `//admin/x` or `/%61dmin/x` meet the
rule for `/admin/*`; a target that cannot be normalised is refused with 400 before any rule.
"""

from __future__ import annotations

from collections.abc import Callable

from sandbox.mesh.config.flags import Flag
from sandbox.mesh.config.model import AuthorizationPolicy, AuthorizationRule, Handler, Request, Response
from sandbox.mesh.dataplane.paths import PathRefused, path_only

DENIED_BODY = b"RBAC: access denied"

Matcher = Callable[[str, str, str], bool]  # (source identity, method, path) -> matches


def service_of(identity: str) -> str:
    """The service name in a SPIFFE ID (spiffe://td/ns/<ns>/sa/<service>), or "" if none."""
    marker = identity.rfind("/sa/")
    return identity[marker + 4 :] if marker >= 0 else ""


def source_matches(pattern: str, identity: str) -> bool:
    """A rule source is a full SPIFFE ID, a bare service name, or "*" (any authenticated peer)."""
    if not identity:
        return False  # a plaintext caller has no identity: only a rule without sources matches it
    if pattern == "*":
        return True
    if pattern.startswith("spiffe://"):
        return pattern == identity
    return pattern == service_of(identity)


def path_matches(pattern: str, path: str) -> bool:
    """Exact match, or a prefix match when the pattern ends in "*"."""
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern


def rule_matcher(rule: AuthorizationRule) -> Matcher:
    sources = rule.sources
    methods = frozenset(m.upper() for m in rule.methods)
    paths = rule.paths

    def matches(identity: str, method: str, path: str) -> bool:
        if sources and not any(source_matches(s, identity) for s in sources):
            return False
        if methods and method.upper() not in methods:
            return False
        return not paths or any(path_matches(p, path) for p in paths)

    return matches


def decide(policy: AuthorizationPolicy, identity: str, method: str, path: str) -> str | None:
    """None when allowed, else the reason for the denial (used by tests and the policy explainer).

    Raises PathRefused when `path` cannot be normalised."""
    return _decider(policy)(identity, method, path)


def _decider(policy: AuthorizationPolicy) -> Callable[[str, str, str], str | None]:
    deny = [(index, rule_matcher(rule)) for index, rule in enumerate(policy.deny)]
    allow = [rule_matcher(rule) for rule in policy.allow]

    def decision(identity: str, method: str, path: str) -> str | None:
        path = path_only(path)
        for index, matches in deny:
            if matches(identity, method, path):
                return f"matched deny rule {index}"
        if allow and not any(matches(identity, method, path) for matches in allow):
            return "no allow rule matched"
        return None

    return decision


def authorization_layer(inner: Handler, policy: AuthorizationPolicy | None) -> Handler:
    """Refuse with 403 and flag RBAC what `policy` does not allow; None passes straight through."""
    if policy is None or (not policy.allow and not policy.deny):
        return inner
    decision = _decider(policy)

    async def handle(request: Request) -> Response:
        identity = request.source_identity
        try:
            reason = decision(identity, request.method, request.path)
        except PathRefused as exc:
            return Response(
                400,
                body=b"Bad Request: path cannot be normalised\n",
                flags={Flag.DPE},
                detail=f"{request.path!r} refused: {exc}",
            )
        if reason is not None:
            who = identity or "a plaintext caller (no identity)"
            detail = f"RBAC: {request.method} {request.path} from {who} denied: {reason}"
            return Response(403, body=DENIED_BODY, flags={Flag.RBAC}, detail=detail)
        return await inner(request)

    return handle
