"""Authorization: allow/deny by source identity (SPIFFE ID or bare name), method, path prefix."""

from __future__ import annotations

from mesh_fakes import ScriptedUpstream, request, run

from sandbox.mesh.config.model import AuthorizationPolicy, AuthorizationRule
from sandbox.mesh.dataplane.layers.authorization import authorization_layer, decide, service_of

FRONTEND = "spiffe://meshlearn.local/ns/default/sa/frontend"
CART = "spiffe://meshlearn.local/ns/default/sa/cart"
FOREIGN_FRONTEND = "spiffe://other.example/ns/default/sa/frontend"


def ask(policy, identity, method="GET", path="/"):
    upstream = ScriptedUpstream(200)
    handler = authorization_layer(upstream, policy)
    response = run(handler(request(path=path, method=method, source_identity=identity)))
    return response, upstream


def test_service_name_is_read_from_the_spiffe_id():
    assert service_of(FRONTEND) == "frontend"
    assert service_of("") == ""


def test_an_allow_rule_by_bare_name_admits_that_service_only():
    policy = AuthorizationPolicy(allow=(AuthorizationRule(sources=("frontend",)),))
    assert ask(policy, FRONTEND)[0].status == 200
    denied, upstream = ask(policy, CART)
    assert (denied.status, denied.flags, denied.body) == (403, {"RBAC"}, b"RBAC: access denied")
    assert upstream.calls == []
    assert "no allow rule matched" in denied.detail and CART in denied.detail


def test_a_full_spiffe_id_rule_does_not_admit_the_same_name_from_another_trust_domain():
    policy = AuthorizationPolicy(allow=(AuthorizationRule(sources=(FRONTEND,)),))
    assert ask(policy, FRONTEND)[0].status == 200
    assert ask(policy, FOREIGN_FRONTEND)[0].status == 403


def test_a_plaintext_caller_has_no_identity_to_match():
    policy = AuthorizationPolicy(allow=(AuthorizationRule(sources=("*",)),))
    response, _ = ask(policy, "")
    assert response.status == 403 and "plaintext" in response.detail
    assert ask(policy, CART)[0].status == 200


def test_deny_is_checked_before_allow():
    policy = AuthorizationPolicy(
        allow=(AuthorizationRule(sources=("frontend", "cart")),),
        deny=(AuthorizationRule(sources=("cart",), methods=("POST",)),),
    )
    assert ask(policy, CART, "GET")[0].status == 200
    denied, _ = ask(policy, CART, "POST")
    assert denied.status == 403 and "deny rule 0" in denied.detail
    assert ask(policy, FRONTEND, "POST")[0].status == 200


def test_methods_and_path_prefixes_narrow_a_rule():
    policy = AuthorizationPolicy(
        allow=(AuthorizationRule(sources=("frontend",), methods=("GET",), paths=("/items/*", "/health")),)
    )
    assert decide(policy, FRONTEND, "GET", "/items/42") is None
    assert decide(policy, FRONTEND, "get", "/health?verbose=1") is None
    assert decide(policy, FRONTEND, "GET", "/healthz") is not None  # exact, not a prefix
    assert decide(policy, FRONTEND, "DELETE", "/items/42") is not None
    assert decide(policy, FRONTEND, "GET", "/admin") is not None


def test_a_deny_only_policy_lets_everything_else_through():
    policy = AuthorizationPolicy(deny=(AuthorizationRule(paths=("/admin*",)),))
    assert ask(policy, "", path="/")[0].status == 200
    assert ask(policy, FRONTEND, path="/admin/users")[0].status == 403


def test_no_policy_passes_straight_through():
    async def inner(req):
        return None

    assert authorization_layer(inner, None) is inner
    assert authorization_layer(inner, AuthorizationPolicy()) is inner
