"""Each analyze finding is triggered by a minimal topology, and the shipped topologies are clean."""

from __future__ import annotations

import pytest

from sandbox.mesh.config.model import RetryPolicy
from sandbox.mesh.config.topology import load_topology, parse_topology, shipped_topology_path
from sandbox.mesh.controlplane.analyze import analyze, format_findings
from sandbox.mesh.controlplane.analyze_traffic import ejectable_replicas, worst_case_backoff
from sandbox.mesh.controlplane.findings import FINDINGS, Finding


def topology(*services: dict, entry: str = "a"):
    return parse_topology({"name": "t", "entry": entry, "services": list(services)})


def a_calls_b(b: dict | None = None, a: dict | None = None):
    """The smallest interesting mesh: a (the entry) calls b; extra keys for either side."""
    return topology({"name": "a", "calls": ["b"], **(a or {})}, {"name": "b", **(b or {})})


def codes(findings: list[Finding]) -> list[str]:
    return [finding.code for finding in findings]


RETRY_3_X_400MS = {"attempts": 3, "per_try_timeout": "400ms"}

# (expected codes, topology): each topology is the smallest that shows the finding.
CASES = {
    "plaintext caller to STRICT": (["MESH001"], lambda: a_calls_b(a={"sidecar": False})),
    "route to a missing service": (["MESH002"], lambda: topology({"name": "a", "calls": ["ghost"]})),
    "retries exceed timeout": (
        ["MESH003"],
        lambda: a_calls_b({"traffic": {"timeout": "1s", "retry": RETRY_3_X_400MS}}),
    ),
    "retries without per-try timeout": (
        ["MESH004"],
        lambda: a_calls_b({"traffic": {"timeout": "1s", "retry": {"attempts": 2}}}),
    ),
    "ejecting the only replica": (
        ["MESH005"],
        lambda: a_calls_b({"traffic": {"outlier_detection": {"consecutive_5xx": 5}}}),
    ),
    "ejecting all of several replicas": (
        ["MESH005"],
        lambda: a_calls_b(
            {"replicas": 3, "traffic": {"outlier_detection": {"consecutive_5xx": 5, "max_ejection_percent": 100}}}
        ),
    ),
    "outlier detection that cannot eject": (
        ["MESH006"],
        lambda: a_calls_b(
            {"replicas": 3, "traffic": {"outlier_detection": {"consecutive_5xx": 5, "max_ejection_percent": 0}}}
        ),
    ),
    "unknown authorization source": (
        ["MESH007"],
        lambda: a_calls_b({"authorization": {"allow": [{"sources": ["a", "stranger"]}]}}),
    ),
    "call cycle": (["MESH008"], lambda: topology({"name": "a", "calls": ["b"]}, {"name": "b", "calls": ["a"]})),
    "self call": (["MESH008"], lambda: topology({"name": "a", "calls": ["a"]})),
    "authorization without sidecar": (
        ["MESH009"],
        lambda: a_calls_b({"sidecar": False, "authorization": {"allow": [{"sources": ["a"]}]}}),
    ),
    "mtls mode without sidecar": (["MESH010"], lambda: a_calls_b({"sidecar": False, "mtls": "STRICT"})),
    "caller left out of allow rules": (
        ["MESH011"],
        lambda: a_calls_b({"authorization": {"allow": [{"sources": ["loadgen"]}]}}),
    ),
    "caller denied outright": (
        ["MESH011"],
        lambda: a_calls_b({"authorization": {"deny": [{"sources": ["spiffe://meshlearn.local/ns/default/sa/a"]}]}}),
    ),
    "source rules with mtls disabled": (
        ["MESH012", "MESH014"],
        lambda: a_calls_b({"mtls": "DISABLE", "authorization": {"allow": [{"sources": ["a"]}]}}),
    ),
    "source rules with permissive mtls": (
        ["MESH012", "MESH013"],
        lambda: a_calls_b(
            {"mtls": "PERMISSIVE", "authorization": {"deny": [{"sources": ["a"], "methods": ["DELETE"]}]}}
        ),
    ),
    "permissive": (["MESH013"], lambda: a_calls_b({"mtls": "PERMISSIVE"})),
    "disabled mtls between sidecars": (["MESH014"], lambda: a_calls_b({"mtls": "DISABLE"})),
    "delay as long as the timeout": (
        ["MESH015", "MESH016"],
        lambda: a_calls_b({"traffic": {"timeout": "1s", "fault": {"delay": {"percent": 100, "duration": "1s"}}}}),
    ),
    "fault injection": (["MESH016"], lambda: a_calls_b({"traffic": {"fault": {"abort": {"percent": 10}}}})),
    "service nobody calls": (["MESH017"], lambda: topology({"name": "a"}, {"name": "c"})),
    "zero retry budget": (
        ["MESH018"],
        lambda: a_calls_b(
            {
                "traffic": {
                    "retry": {"attempts": 2, "per_try_timeout": "100ms", "budget_ratio": 0, "budget_min_per_second": 0}
                }
            }
        ),
    ),
    "policy for a caller without sidecar": (
        ["MESH019"],
        lambda: a_calls_b(
            {"sidecar": False, "traffic": {"retry": {"attempts": 2, "per_try_timeout": "100ms"}}}, a={"sidecar": False}
        ),
    ),
    "retries with no timeout at all": (["MESH020"], lambda: a_calls_b({"traffic": {"retry": {"attempts": 2}}})),
}


@pytest.mark.parametrize("case", list(CASES))
def test_minimal_topology_triggers_exactly_its_finding(case):
    expected, build = CASES[case]
    findings = analyze(build())
    assert codes(findings) == expected
    for finding in findings:
        assert finding.message and finding.subject
        assert finding.severity in ("error", "warning", "info")


def test_every_catalogued_code_has_a_triggering_case():
    triggered = {code for expected, _ in CASES.values() for code in expected}
    assert triggered == set(FINDINGS)


def test_severity_follows_the_catalogue_except_mesh012_on_permissive():
    for case, (_expected, build) in CASES.items():
        for finding in analyze(build()):
            if finding.code == "MESH012" and "PERMISSIVE" in finding.message:
                assert finding.severity == "info"
            else:
                assert finding.severity == FINDINGS[finding.code][0], case


@pytest.mark.parametrize("name", ["pair", "shop"])
def test_shipped_topologies_have_no_findings(name):
    assert analyze(load_topology(shipped_topology_path(name))) == []


# ------------------------------------------------------------------ the details a learner reads


def test_plaintext_caller_finding_names_both_ends():
    (finding,) = analyze(CASES["plaintext caller to STRICT"][1]())
    assert finding.subject == "a -> b"
    assert finding.severity == "error"
    assert "STRICT" in finding.message and "no sidecar" in finding.message


def test_retry_timeout_arithmetic_is_shown():
    (finding,) = analyze(CASES["retries exceed timeout"][1]())
    # 4 tries x 0.4 s + 0.025 + 0.075 + 0.175 s of backoff = 1.875 s > 1 s
    assert "4 tries x 0.4s" in finding.message
    assert "1.88s" in finding.message and "1s request timeout" in finding.message


def test_retries_that_fit_inside_the_timeout_are_fine():
    fits = a_calls_b({"traffic": {"timeout": "2s", "retry": RETRY_3_X_400MS}})
    assert analyze(fits) == []  # 1.6 s + 0.275 s of backoff < 2 s


def test_backoff_bound_matches_jittered_exponential_backoff():
    assert worst_case_backoff(RetryPolicy(attempts=3)) == pytest.approx(0.025 + 0.075 + 0.175)
    assert worst_case_backoff(RetryPolicy(attempts=5)) == pytest.approx(0.025 + 0.075 + 0.175 + 0.25 + 0.25)
    assert worst_case_backoff(RetryPolicy(attempts=0)) == 0


@pytest.mark.parametrize(
    ("replicas", "percent", "ejectable"),
    [(3, 50, 1), (3, 10, 1), (3, 100, 3), (4, 50, 2), (1, 10, 1), (3, 0, 0), (10, 25, 2)],
)
def test_ejectable_replicas(replicas, percent, ejectable):
    assert ejectable_replicas(replicas, percent) == ejectable


def test_a_cycle_is_reported_once():
    findings = analyze(
        topology({"name": "a", "calls": ["b"]}, {"name": "b", "calls": ["c"]}, {"name": "c", "calls": ["a"]})
    )
    assert codes(findings) == ["MESH008"]
    assert findings[0].subject == "a -> b -> c -> a"


def test_deny_limited_to_some_methods_does_not_refuse_the_caller():
    allowed = a_calls_b({"authorization": {"deny": [{"sources": ["a"], "methods": ["DELETE"]}]}})
    assert analyze(allowed) == []


def test_findings_come_sorted_and_formatted_like_istioctl():
    both = topology({"name": "a", "calls": ["ghost"], "sidecar": False, "mtls": "PERMISSIVE"})
    findings = analyze(both)
    assert codes(findings) == ["MESH002", "MESH010"]
    lines = format_findings(findings).splitlines()
    assert lines[0].startswith("Error [MESH002] (a -> ghost) a calls ghost")
    assert lines[1].startswith("Warning [MESH010] (a) a has no sidecar")
    assert format_findings([]) == "No findings."
