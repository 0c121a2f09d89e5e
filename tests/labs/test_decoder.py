"""The error decoder, as a table of real flag combinations, access-log lines and TLS error strings."""

import pytest

from labs.decoder import MAX_INPUT_CHARS, decode
from sandbox.mesh.config.flags import FLAG_EXPLANATIONS

MESH_LINE = (
    '[2026-12-01T14:00:00.123Z] outbound "GET /checkout HTTP/1.1" 503 UF,URX 95 12.1 "127.0.0.1:4000" '
    'a -> b attempts=4 "connection refused: [Errno 111] Connect call failed" traceparent=-'
)
ISTIO_LINE = (
    '[2024-05-02T10:11:12.345Z] "GET /productpage HTTP/1.1" 503 UF,URX '
    "upstream_reset_before_response_started{connection_failure,TLS_error:|268435581:SSL_routines:"
    'OPENSSL_internal:CERTIFICATE_VERIFY_FAILED} - "-" 0 91 12 - "-" "curl/8.0" "abc" "reviews:9080" '
    '"10.0.0.5:9080" outbound|9080||reviews.default.svc.cluster.local - 10.0.0.4:9080 10.0.0.3:51234 - default'
)
INBOUND_RBAC = (
    '[2026-12-01T14:00:01.000Z] inbound "GET / HTTP/1.1" 403 RBAC 19 0.4 "-" a -> b attempts=1 '
    '"RBAC: GET / from spiffe://meshlearn.local/ns/default/sa/a denied: deny rule 0" traceparent=-'
)


def kinds(text):
    return [(m.kind, m.token) for m in decode(text).meanings]


@pytest.mark.parametrize(
    "text, expected_tokens, side_words, lab",
    [
        # bare flags and flag combinations
        ("UF", ["UF"], "caller", "kill-sidecar"),
        ("UF,URX", ["UF", "URX"], "caller", "kill-sidecar"),
        ("UO", ["UO"], "caller", "circuit-breaker"),
        ("UT", ["UT"], "caller", "delay-timeout"),
        ("UH", ["UH"], "caller", "outlier-ejection"),
        ("URX,UT", ["URX", "UT"], "caller", "retries-hide-flaky"),
        ("FI", ["FI"], "caller", "abort-fault"),
        ("RBAC", ["RBAC"], "callee", "authorization-deny"),
        ("503 UC,URX", ["UC", "URX", "503"], "caller", "kill-sidecar"),
        # TLS error strings, as OpenSSL, Python and Envoy print them
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)",
            ["certificate has expired"],
            "verifying side",
            "bad-certificate",
        ),
        ("certificate has expired", ["certificate has expired"], "verifying side", "bad-certificate"),
        (
            "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:2580)",
            ["UNKNOWN_CA"],
            "verifying side",
            "bad-certificate",
        ),
        ("unknown ca", ["unknown ca"], "verifying side", "bad-certificate"),
        (
            "certificate verify failed: unable to get local issuer certificate",
            ["unable to get local issuer certificate"],
            "verifying side",
            "bad-certificate",
        ),
        (
            "spiffe id mismatch: expected spiffe://meshlearn.local/ns/default/sa/b, got spiffe://meshlearn.local/ns/default/sa/c",
            ["spiffe id mismatch"],
            "caller",
            "bad-certificate",
        ),
        (
            "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)",
            ["WRONG_VERSION_NUMBER"],
            "client",
            "strict-mtls-plaintext",
        ),
        ("[SSL: HTTP_REQUEST] http request (_ssl.c:1006)", ["HTTP_REQUEST"], "callee", "strict-mtls-plaintext"),
        (
            "400 The plain HTTP request was sent to HTTPS port",
            ["plain HTTP request was sent to HTTPS port"],
            "callee",
            "strict-mtls-plaintext",
        ),
        ("http request sent to https port", ["http request sent to https port"], "callee", "strict-mtls-plaintext"),
        (
            "[SSL: PEER_DID_NOT_RETURN_A_CERTIFICATE] peer did not return a certificate",
            ["PEER_DID_NOT_RETURN_A_CERTIFICATE"],
            "callee",
            "strict-mtls-plaintext",
        ),
        ("tlsv1 alert", ["tlsv1 alert"], "either", "bad-certificate"),
        ("CERTIFICATE_VERIFY_FAILED", ["CERTIFICATE_VERIFY_FAILED"], "either", "bad-certificate"),
        ("sslv3 alert certificate expired", ["sslv3 alert certificate expired"], "verifying side", "bad-certificate"),
        # Envoy response-code details
        (
            "upstream_reset_before_response_started{connection_failure}",
            ["upstream_reset_before_response_started{connection_failure}"],
            "caller",
            "kill-sidecar",
        ),
        ("upstream_per_try_timeout", ["upstream_per_try_timeout"], "caller", "per-try-timeout"),
        (
            "rbac_access_denied_matched_policy[none]",
            ["rbac_access_denied_matched_policy[none]"],
            "callee",
            "authorization-deny",
        ),
    ],
)
def test_each_known_input_is_explained_with_its_side_and_lab(text, expected_tokens, side_words, lab):
    result = decode(text)
    tokens = [m.token for m in result.meanings]
    for token in expected_tokens:
        assert token in tokens
    first = result.meanings[0]
    assert side_words in first.side.lower()
    assert first.lab == lab
    assert result.unrecognised == []


def test_flag_meaning_is_the_engines_own_text():
    for flag in ("UF", "UO", "URX", "UT", "UH", "RBAC"):
        assert decode(flag).meanings[0].meaning == FLAG_EXPLANATIONS[flag]


def test_mesh_access_log_line_reads_status_flags_and_who_logged_it():
    result = decode(MESH_LINE)
    assert result.line["status"] == "503" and result.line["flags"] == "UF,URX"
    assert result.logged_by == "a's sidecar, calling b (outbound)"
    assert kinds(MESH_LINE)[:2] == [("flag", "UF"), ("flag", "URX")]
    assert ("status", "503") in kinds(MESH_LINE)
    assert result.labs[0] == "kill-sidecar"


def test_istio_access_log_line_explains_flags_reset_reason_and_tls_failure():
    result = decode(ISTIO_LINE)
    titles = [m.title for m in result.meanings]
    assert "Response flag UF" in titles and "Response flag URX" in titles
    detail = next(m for m in result.meanings if m.kind == "detail")
    assert "could not connect" in detail.meaning  # {connection_failure} is spelled out
    assert any(m.kind == "tls" for m in result.meanings)


def test_inbound_rbac_line_says_the_callee_decided():
    result = decode(INBOUND_RBAC)
    assert result.logged_by == "b's sidecar, called by a (inbound)"
    assert result.meanings[0].token == "RBAC" and "callee" in result.meanings[0].side


def test_the_issue_example_explains_every_part():
    result = decode("503 UF,URX upstream_reset_before_response_started ... CERTIFICATE_VERIFY_FAILED")
    got = {m.kind for m in result.meanings}
    assert got == {"flag", "detail", "tls", "status"}


@pytest.mark.parametrize("text", ["hello world", "", "   ", "TLS is hard", "0123", "{}", "\x00\x01", "é" * 10])
def test_unknown_input_is_not_recognised(text):
    result = decode(text)
    assert not result.recognised


def test_unknown_flags_are_listed_beside_what_was_recognised():
    result = decode("XQZ,UF")
    assert [m.token for m in result.meanings] == ["UF"]
    assert result.unrecognised == ["XQZ"]


def test_envoy_only_flags_are_recognised_without_a_lab():
    meaning = decode("LR,UR").meanings[0]
    assert "does not produce" in meaning.side and meaning.lab == ""


def test_input_is_bounded():
    result = decode("UF " + "x" * (MAX_INPUT_CHARS * 3))
    assert result.truncated and len(result.text) == MAX_INPUT_CHARS
    assert result.meanings[0].token == "UF"


@pytest.mark.parametrize(
    "direction, status, flags, detail, expected",
    [
        (
            "outbound",
            503,
            "UF,URX",
            "connection refused: [Errno 111] Connect call failed; 3 retries exhausted",
            ["Response flag UF", "Response flag URX", "Status 503"],
        ),
        ("outbound", 504, "UT", "per-try timeout of 200 ms exceeded", ["Response flag UT", "Status 504"]),
        ("outbound", 503, "UO", "circuit breaker: 5 active, 2 pending", ["Response flag UO", "Status 503"]),
        (
            "inbound",
            403,
            "RBAC",
            "RBAC: GET / from spiffe://meshlearn.local/ns/default/sa/a denied: deny rule 0",
            ["Response flag RBAC", "Status 403"],
        ),
        (
            "inbound",
            0,
            "-",
            "TLS handshake failed: certificate expired",
            ["TLS handshake failure: certificate expired"],
        ),
    ],
)
def test_the_meshs_own_access_log_lines_decode(direction, status, flags, detail, expected):
    from sandbox.mesh.dataplane.telemetry import AccessLogRecord

    line = AccessLogRecord(
        time=1764597600.5,
        direction=direction,
        method="GET",
        path="/",
        source="a",
        destination="b",
        upstream="127.0.0.1:4000",
        status=status,
        flags=flags,
        duration_ms=3.2,
        attempts=4,
        detail=detail,
        traceparent="",
    ).render()
    result = decode(line)
    titles = [meaning.title for meaning in result.meanings]
    for title in expected:
        assert title in titles, (line, titles)
    assert result.line["status"] == str(status) and result.unrecognised == []
