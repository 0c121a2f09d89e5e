"""Request-target normalisation: a table of what each target becomes, or why it is refused."""

from __future__ import annotations

import pytest
from mesh_fakes import ScriptedUpstream, request, run

from sandbox.mesh.config.model import AuthorizationPolicy, AuthorizationRule
from sandbox.mesh.dataplane.layers.authorization import authorization_layer
from sandbox.mesh.dataplane.layers.inbound_path import inbound_path_layer
from sandbox.mesh.dataplane.paths import PathRefused, normalize_path

NORMALISED = [
    ("/", "/"),
    ("/admin/x", "/admin/x"),
    ("//admin/x", "/admin/x"),
    ("/admin//x", "/admin/x"),
    ("/./admin/x", "/admin/x"),
    ("/admin/./x", "/admin/x"),
    ("/a/../admin/x", "/admin/x"),
    ("/a/b/../../admin/x", "/admin/x"),
    ("/%61dmin/x", "/admin/x"),
    ("/%41DMIN/x", "/ADMIN/x"),  # case is kept: paths are case-sensitive
    ("/a/%2e%2e/admin/x", "/admin/x"),  # an encoded dot is unreserved: decoded, then a dot segment
    ("/%7euser", "/~user"),
    ("/caf%c3%a9", "/caf%C3%A9"),  # reserved or non-ASCII escapes stay encoded, in upper case
    ("/a%20b", "/a%20b"),
    ("/a/.", "/a/"),
    ("/a/..", "/"),
    ("/a/b/", "/a/b/"),
    ("/admin/x?q=1&r=/../y", "/admin/x?q=1&r=/../y"),  # the query is not a path
    ("http://b/admin/x", "/admin/x"),
    ("HTTP://b:8080//admin/./x?y", "/admin/x?y"),
    ("http://b", "/"),
    ("http://b?x=1", "/?x=1"),
]

REFUSED = [
    ("/admin%2Fx", "encoded path separator"),
    ("/admin%2fx", "encoded path separator"),
    ("/admin%5Cx", "encoded path separator"),
    ("/..", "climbs above the root"),
    ("/../admin/x", "climbs above the root"),
    ("/a/../../admin", "climbs above the root"),
    ("/%2e%2e/admin", "climbs above the root"),
    ("/a//../admin", "ambiguous"),
    ("/%zz/admin", "invalid percent escape"),
    ("/admin/%4", "invalid percent escape"),
    ("/admin/%", "invalid percent escape"),
    ("admin/x", "must start with '/'"),
    ("*", "must start with '/'"),
    ("/admin#x", "fragment"),
    ("/admin\\x", "not allowed"),
    ("/ad min", "not allowed"),
    ("/caf\u00e9", "not allowed"),
]


@pytest.mark.parametrize(("target", "expected"), NORMALISED)
def test_a_target_is_normalised_as_envoy_would(target, expected):
    assert normalize_path(target) == expected


@pytest.mark.parametrize(("target", "reason"), REFUSED)
def test_a_target_without_one_meaning_is_refused(target, reason):
    with pytest.raises(PathRefused, match=reason):
        normalize_path(target)


DENY_ADMIN = AuthorizationPolicy(deny=(AuthorizationRule(paths=("/admin/*",)),))
SIDESTEPS = ["//admin/x", "/./admin/x", "/%61dmin/x", "/a/../admin/x", "http://b/admin/x", "/admin//x"]


def _through(handler_factory, path):
    upstream = ScriptedUpstream(200)
    response = run(handler_factory(upstream)(request(path=path)))
    return response, upstream


@pytest.mark.parametrize("path", SIDESTEPS)
def test_a_deny_rule_catches_every_spelling_of_its_path(path):
    response, upstream = _through(lambda up: authorization_layer(up, DENY_ADMIN), path)
    assert (response.status, response.flags) == (403, {"RBAC"})
    assert upstream.calls == []


@pytest.mark.parametrize("path", ["/admin%2Fx", "/../admin/x", "/%zz"])
def test_authorization_refuses_a_path_it_cannot_normalise_with_400(path):
    response, upstream = _through(lambda up: authorization_layer(up, DENY_ADMIN), path)
    assert response.status == 400 and "DPE" in response.flags
    assert upstream.calls == []


def test_the_inbound_forwards_the_normalised_path():
    seen = []
    upstream = ScriptedUpstream(lambda req: seen.append(req.path) or 200)
    response = run(inbound_path_layer(upstream)(request(path="//shop/./items/%61?x=1")))
    assert response.status == 200
    assert seen == ["/shop/items/a?x=1"]


@pytest.mark.parametrize(
    "path",
    [
        "/_mesh/behaviour",
        "//_mesh/behaviour",
        "/%5Fmesh/wiring",
        "/x/../_mesh/stats",
        "http://d/_mesh/behaviour",
        "/_mesh",
    ],
)
def test_the_inbound_never_forwards_the_workloads_admin_paths(path):
    response, upstream = _through(inbound_path_layer, path)
    assert response.status == 404
    assert upstream.calls == []


def test_the_inbound_refuses_an_unnormalisable_path_before_the_application():
    response, upstream = _through(inbound_path_layer, "/a%2Fb")
    assert response.status == 400
    assert upstream.calls == []
