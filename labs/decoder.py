"""The error decoder: what an access-log line, a response flag or a TLS error means, who produced it, why.

Pure functions, no Django. `decode(text)` picks out everything it recognises (the status and flags of an
Envoy-style access-log line, a bare flag list like "UF,URX", Envoy response-code details such as
`upstream_reset_before_response_started{connection_failure}`, OpenSSL / Python TLS error strings, this mesh's
own detail texts) and explains each one. A flag's meaning comes from the engine's one flag table
(`sandbox.mesh.config.flags`), and a TLS failure is first reduced to the engine's stable reason (`sandbox.mesh.dataplane.tls`), so
the decoder and the live sandbox never disagree. Input it cannot read is "not recognised", with what it did read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sandbox.mesh.config.flags import FLAG_EXPLANATIONS
from sandbox.mesh.dataplane import tls

MAX_INPUT_CHARS = 4000  # a pasted line or a few; more is cut off and said so

CALLER = "the caller's sidecar (outbound)"
CALLEE = "the callee's sidecar (inbound)"
EITHER = "either sidecar"


@dataclass(frozen=True)
class Meaning:
    """One recognised thing and what it tells a learner."""

    kind: str  # flag | tls | detail | status
    token: str  # what was recognised, as it appeared (or its canonical spelling)
    title: str
    meaning: str
    side: str  # which side produced or decided it
    causes: tuple[str, ...] = ()
    lab: str = ""  # slug of the lab that reproduces it
    action: dict | None = None  # a sandbox command that reproduces it on the pair topology


@dataclass
class Decoding:
    text: str
    meanings: list[Meaning] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)  # tokens that looked like flags or codes but are not known
    truncated: bool = False
    line: dict[str, str] = field(default_factory=dict)  # parsed access-log fields: status, flags, direction, ...

    @property
    def recognised(self) -> bool:
        return bool(self.meanings)

    @property
    def logged_by(self) -> str:
        """Whose log an access-log line came from, when the line says ("a's sidecar, calling b")."""
        direction, source, destination = (self.line.get(key) for key in ("direction", "source", "destination"))
        if not (direction and source and destination):
            return ""
        if direction == "outbound":
            return f"{source}'s sidecar, calling {destination} (outbound)"
        return f"{destination}'s sidecar, called by {source} (inbound)"

    @property
    def labs(self) -> list[str]:
        """The labs that reproduce what was recognised, in order, each once."""
        return list(dict.fromkeys(meaning.lab for meaning in self.meanings if meaning.lab))


# --------------------------------------------------------------------------- response flags

# Why each flag happens and where it is decided. The meaning itself is the engine's (FLAG_EXPLANATIONS).
_FLAG_CONTEXT: dict[str, tuple[str, tuple[str, ...], str, dict | None]] = {
    "UF": (
        CALLER,
        (
            "the callee's sidecar or app is down (killed, crashed, not started)",
            "the mTLS handshake failed (expired or foreign certificate, wrong identity, plaintext vs STRICT)",
            "the endpoint's port is wrong or closed",
        ),
        "kill-sidecar",
        {"action": "kill", "service": "b", "target": "sidecar"},
    ),
    "UO": (
        CALLER,
        (
            "more requests in flight than max_connections + max_pending_requests allow",
            "the callee got slow, so requests pile up while the load stays the same",
        ),
        "circuit-breaker",
        {"action": "slow", "service": "b", "ms": 300},
    ),
    "URX": (
        CALLER,
        (
            "the callee keeps failing (every try got a retriable error)",
            "attempts is too low for how flaky the callee is",
        ),
        "retries-hide-flaky",
        {"action": "fail", "service": "b", "percent": 100, "status": 503},
    ),
    "UT": (
        CALLER,
        (
            "the callee is slower than the timeout (or hangs)",
            "the per-try timeout times the tries does not fit in the overall timeout",
        ),
        "delay-timeout",
        {"action": "slow", "service": "b", "ms": 3000},
    ),
    "UH": (
        CALLER,
        (
            "no endpoint of the destination is registered or reachable",
            "outlier detection ejected every replica (then the panic threshold sends to all of them)",
        ),
        "outlier-ejection",
        {"action": "fail", "service": "b", "percent": 100, "status": 503},
    ),
    "NR": (CALLER, ("the app called a service name the mesh does not know (a typo, a missing service)",), "", None),
    "FI": (CALLER, ("a fault-injection abort policy is configured on the destination",), "abort-fault", None),
    "DI": (CALLER, ("a fault-injection delay policy is configured on the destination",), "delay-timeout", None),
    "DC": (
        "the sidecar whose caller went away",
        ("the caller's own timeout fired first and it hung up", "the caller process died"),
        "",
        None,
    ),
    "UC": (
        CALLER,
        (
            "the callee's process died or closed the connection mid-request",
            "an idle keep-alive connection was closed by the callee",
        ),
        "kill-sidecar",
        None,
    ),
    "RBAC": (
        CALLEE,
        (
            "an authorization policy on the callee denies this caller, method or path",
            "the caller's identity is not the one the policy allows (e.g. plaintext has no identity)",
        ),
        "authorization-deny",
        {"action": "deny", "service": "b", "source": "a"},
    ),
    "RL": (
        CALLEE,
        (
            "the callee has a local rate limit and its callers send more than its requests per second and burst",
            "a burst of requests arrived at once, beyond the limit's burst",
        ),
        "",
        {"action": "rate_limit", "service": "b", "rps": 10, "burst": 5},
    ),
}

# Envoy flags this mesh never produces: recognised, explained briefly, with no lab.
_ENVOY_ONLY_FLAGS: dict[str, str] = {
    "LH": "Local service failed its health check.",
    "UR": "Upstream remote reset (the upstream reset the stream).",
    "LR": "Connection local reset.",
    "UAEX": "Unauthorized by the external authorization service.",
    "RLSE": "Rate-limit service error.",
    "IH": "Strict header check failed (invalid header value).",
    "SI": "Stream idle timeout.",
    "UPE": "Upstream protocol error (the upstream answered malformed HTTP).",
    "UMSDR": "Upstream max stream duration reached.",
    "NC": "Upstream cluster not found.",
    "DT": "Downstream request took longer than max_downstream_connection_duration or the request timeout.",
    "OM": "Overload manager terminated the request.",
    "DF": "DNS resolution failed.",
    "DO": "Drop overload: the request was dropped by the overload manager.",
}


def _flag_meaning(flag: str) -> Meaning | None:
    if flag in FLAG_EXPLANATIONS:
        side, causes, lab, action = _FLAG_CONTEXT.get(flag, (EITHER, (), "", None))
        return Meaning("flag", flag, f"Response flag {flag}", FLAG_EXPLANATIONS[flag], side, causes, lab, action)
    if flag in _ENVOY_ONLY_FLAGS:
        return Meaning(
            "flag",
            flag,
            f"Envoy response flag {flag}",
            _ENVOY_ONLY_FLAGS[flag],
            "Envoy (this mesh does not produce this flag)",
        )
    return None


# --------------------------------------------------------------------------- TLS failures

# The engine's stable reasons (sandbox.mesh.dataplane.tls) explained; every pattern below maps to one of them.
_TLS_REASONS: dict[str, tuple[str, str, tuple[str, ...], str, dict | None]] = {
    tls.CERTIFICATE_EXPIRED: (
        "The certificate presented is past its notAfter date, so the side verifying it refused the handshake.",
        "the verifying side: a client rejects an expired server certificate (CERTIFICATE_VERIFY_FAILED); the "
        "side whose certificate expired sees the peer's alert ('certificate expired' / 'sslv3 alert')",
        (
            "certificate rotation stopped (the agent cannot reach the CA, or the CA is down)",
            "a clock far off on one of the machines",
            "a certificate issued by hand and forgotten",
        ),
        "bad-certificate",
        {"action": "cert", "service": "b", "fault": "expired"},
    ),
    tls.CERTIFICATE_NOT_YET_VALID: (
        "The certificate's notBefore is in the future for the side verifying it.",
        "the verifying side",
        ("clock skew between machines",),
        "",
        None,
    ),
    tls.UNKNOWN_CA: (
        "The certificate chains to a CA the verifying side does not trust.",
        "the verifying side decides; its peer logs the alert 'tlsv1 alert unknown ca'",
        (
            "the workload got its certificate from another mesh's or an old CA (root rotation half done)",
            "a self-signed or hand-made certificate",
            "the trust bundle was not distributed to this sidecar",
        ),
        "bad-certificate",
        {"action": "cert", "service": "b", "fault": "foreign_ca"},
    ),
    tls.SPIFFE_ID_MISMATCH: (
        "The handshake itself succeeded, but the peer's SPIFFE ID (its URI SAN) is not the identity expected for "
        "that service, so the sidecar dropped the connection. In a mesh, identity is the SPIFFE ID, not the host name.",
        "the caller's sidecar (it checks the server's identity right after the handshake)",
        (
            "the endpoint now belongs to another workload (stale discovery, port reuse)",
            "a certificate issued for the wrong service account",
        ),
        "bad-certificate",
        {"action": "cert", "service": "b", "fault": "wrong_spiffe"},
    ),
    tls.NO_CLIENT_CERTIFICATE: (
        "The server requires a client certificate (mutual TLS) and the client sent none.",
        CALLEE,
        ("the caller uses one-way TLS, not mTLS", "the caller's sidecar has no certificate yet"),
        "strict-mtls-plaintext",
        None,
    ),
    tls.PLAINTEXT_TO_MTLS_PORT: (
        "Plain HTTP arrived where a TLS handshake was expected: a STRICT mTLS port refuses plaintext.",
        f"{CALLEE} refuses it; the caller sees its connection closed (UF / reset)",
        (
            "the caller is outside the mesh or has mTLS turned off",
            "the service is STRICT before every caller is migrated: use PERMISSIVE while migrating",
        ),
        "strict-mtls-plaintext",
        {"action": "plaintext", "service": "a"},
    ),
    tls.TLS_TO_PLAINTEXT_PORT: (
        "A TLS ClientHello was sent to a port that speaks plain HTTP, so the answer is not a TLS record "
        "('wrong version number' on the client).",
        "the client (it cannot parse the plaintext answer)",
        (
            "the server has mTLS DISABLE (or no sidecar) while the caller originates mTLS",
            "the wrong port: an app port instead of the sidecar's",
        ),
        "strict-mtls-plaintext",
        {"action": "mtls_mode", "service": "b", "mode": "DISABLE"},
    ),
    tls.BAD_CERTIFICATE: (
        "The peer rejected the certificate for a reason other than expiry or trust (bad signature, wrong usage).",
        "the peer that sent the alert",
        ("a certificate without the right key usage", "a corrupted chain"),
        "bad-certificate",
        None,
    ),
    tls.PROTOCOL_VERSION: (
        "The two sides share no TLS version (this mesh requires TLS 1.3).",
        EITHER,
        ("an old client limited to TLS 1.0/1.1/1.2",),
        "",
        None,
    ),
    tls.HANDSHAKE_TIMEOUT: (
        "The TLS handshake did not finish in time.",
        EITHER,
        ("the peer accepted the connection but is stuck", "a plaintext client waiting for a server greeting"),
        "",
        None,
    ),
    tls.CONNECTION_CLOSED: (
        "The connection closed in the middle of the handshake: usually the peer refused and hung up.",
        "the side that logs it was refused by its peer",
        (
            "the peer rejected the certificate or identity (look at the peer's log for the reason)",
            "the peer process died",
        ),
        "bad-certificate",
        None,
    ),
    tls.CONNECTION_RESET: (
        "The peer reset the connection during the handshake, without saying why.",
        "the side that logs it was reset by its peer",
        (
            "the peer refused this side's certificate (expired, from a foreign CA) and hung up without the TLS "
            "alert: the peer's own record says why",
            "the peer process died",
            "the peer refused plaintext or TLS on that port",
        ),
        "bad-certificate",
        None,
    ),
    tls.HANDSHAKE_FAILED: ("The TLS handshake failed for a reason not classified further.", EITHER, (), "", None),
}

# (pattern, engine reason): first match wins per span of text; case-insensitive.
_TLS_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.IGNORECASE), reason)
    for p, reason in (
        (
            r"certificate (?:has )?expired|certificate_expired|sslv3[ _]alert[ _]certificate[ _]expired",
            tls.CERTIFICATE_EXPIRED,
        ),
        (r"certificate is not yet valid|certificate not yet valid", tls.CERTIFICATE_NOT_YET_VALID),
        (
            r"unknown[ _]ca\b|unable to get (?:local )?issuer certificate|self[- ]signed certificate"
            r"|unable to verify the first certificate",
            tls.UNKNOWN_CA,
        ),
        (
            r"spiffe[ _]id[ _]mismatch|unexpected spiffe id|san mismatch|subject alt(?:ernative)? name mismatch"
            r"|verify_subject_alt_name",
            tls.SPIFFE_ID_MISMATCH,
        ),
        (
            r"peer[ _]did[ _]not[ _]return[ _]a[ _]certificate|certificate[ _]required|no client certificate",
            tls.NO_CLIENT_CERTIFICATE,
        ),
        (
            r"http request sent to https port|plain http request was sent to https port|\bhttp_request\b"
            r"|plaintext sent to mtls port",
            tls.PLAINTEXT_TO_MTLS_PORT,
        ),
        (
            r"wrong[ _]version[ _]number|packet[ _]length[ _]too[ _]long|tls sent to plaintext port",
            tls.TLS_TO_PLAINTEXT_PORT,
        ),
        (r"bad[ _]certificate|unsupported[ _]certificate|certificate[ _]unknown|decrypt[ _]error", tls.BAD_CERTIFICATE),
        (r"protocol[ _]version|unsupported[ _]protocol|no[ _]protocols[ _]available", tls.PROTOCOL_VERSION),
        (r"handshake timeout|handshake timed out", tls.HANDSHAKE_TIMEOUT),
        (
            r"connection closed during handshake|unexpected[ _]eof|eof occurred in violation of protocol",
            tls.CONNECTION_CLOSED,
        ),
        # Only a reset the text ties to a handshake: "Connection reset by peer" alone is a UC in mid-request.
        (
            r"handshake failed: connection reset|connection reset during (?:the )?(?:tls )?handshake",
            tls.CONNECTION_RESET,
        ),
    )
]
# Words that say "some TLS failure" without saying which: recognised as such, pointing at the peer's log.
_TLS_GENERIC = re.compile(
    r"certificate_verify_failed|tlsv1[ _]alert|sslv3[ _]alert|tls_error|ssl routines"
    r"|handshake failed|handshake failure",
    re.IGNORECASE,
)


def _tls_meaning(reason: str, token: str) -> Meaning:
    meaning, side, causes, lab, action = _TLS_REASONS[reason]
    return Meaning("tls", token, f"TLS handshake failure: {reason}", meaning, side, causes, lab, action)


# --------------------------------------------------------------------------- Envoy response-code details

_DETAILS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    # detail -> (meaning, side, causes, lab)
    "upstream_reset_before_response_started": (
        "The upstream connection was reset or never established before any response byte arrived.",
        CALLER,
        (
            "see the reason in braces: connection_failure = could not connect or handshake; "
            "connection_termination / remote_reset = the upstream went away mid-request",
        ),
        "kill-sidecar",
    ),
    "upstream_reset_after_response_started": (
        "The upstream reset the connection after it had started answering.",
        CALLER,
        ("the upstream process died mid-response",),
        "",
    ),
    "response_timeout": (
        "The overall route timeout fired before the upstream answered (flag UT).",
        CALLER,
        ("a slow or hung upstream", "retries that do not fit in the timeout"),
        "delay-timeout",
    ),
    "upstream_per_try_timeout": (
        "One try exceeded its per-try timeout; the retry policy may try again.",
        CALLER,
        ("a slow replica", "a per-try timeout tighter than the normal latency"),
        "per-try-timeout",
    ),
    "rbac_access_denied_matched_policy": (
        "An authorization (RBAC) policy denied the request (403).",
        CALLEE,
        ("a deny rule matched, or no allow rule did",),
        "authorization-deny",
    ),
    "fault_filter_abort": (
        "The fault-injection filter aborted the request on purpose (flag FI).",
        CALLER,
        ("an abort fault is configured",),
        "abort-fault",
    ),
    "fault_filter_delay": (
        "The fault-injection filter delayed the request on purpose (flag DI).",
        CALLER,
        ("a delay fault is configured",),
        "delay-timeout",
    ),
    "no_healthy_upstream": (
        "No healthy endpoint was available (flag UH).",
        CALLER,
        ("every endpoint is ejected or down",),
        "outlier-ejection",
    ),
    "route_not_found": ("No route matched the request (flag NR).", CALLER, ("an unknown host name",), ""),
    "cluster_not_found": ("The route points at a cluster that does not exist.", CALLER, ("stale configuration",), ""),
    "overflow": (
        "The circuit breaker refused the request (flag UO).",
        CALLER,
        ("too many requests in flight or pending",),
        "circuit-breaker",
    ),
    "via_upstream": (
        "The status came from the upstream application itself, not from a proxy.",
        "the application behind the callee's sidecar",
        ("the app's own error",),
        "abort-fault",
    ),
    "downstream_remote_disconnect": (
        "The caller disconnected before the answer (flag DC).",
        "the sidecar whose caller went away",
        ("the caller's timeout fired first",),
        "",
    ),
}
_DETAIL_RE = re.compile(
    r"\b(" + "|".join(map(re.escape, sorted(_DETAILS, key=len, reverse=True))) + r")(?:\{([^}]*)\}|\[([^\]]*)\])?",
    re.IGNORECASE,
)
_RESET_REASONS = {
    "connection_failure": "could not connect (refused, unreachable) or the TLS handshake failed",
    "connection_termination": "the upstream closed the connection",
    "remote_reset": "the upstream reset the stream",
    "local_reset": "this proxy reset the stream",
    "overflow": "the circuit breaker overflowed",
}

# This mesh's own detail texts (sandbox/mesh/dataplane/layers/*): recognised and tied to their flag.
_MESH_DETAILS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.IGNORECASE), flag)
    for p, flag in (
        (r"retry budget exhausted", "URX"),
        (r"\d+ retries exhausted", "URX"),
        (r"per-try timeout of [\d.]+ ms exceeded", "UT"),
        (r"request timeout of [\d.]+ ms exceeded", "UT"),
        (r"fault injection: aborted", "FI"),
        (r"RBAC: .* denied", "RBAC"),
        (r"local_rate_limited|local rate limit: over", "RL"),
        (r"connection refused", "UF"),
    )
]

_STATUSES: dict[int, tuple[str, str]] = {
    0: ("No HTTP answer at all: the connection failed, the handshake failed, or the caller went away.", EITHER),
    403: ("Forbidden. From a sidecar with flag RBAC: an authorization policy denied it.", CALLEE),
    404: ("Not found: the path (or, with NR, the service) does not exist.", EITHER),
    429: ("Too many requests: rate limited.", EITHER),
    500: ("Internal server error from the application.", "the application"),
    502: ("Bad gateway: the proxy got an invalid answer from upstream.", CALLER),
    503: (
        "Service unavailable. From a sidecar with a flag (UF, UO, UH, URX, FI): the mesh refused or could not "
        "reach the upstream; with no flag: the application itself said 503.",
        EITHER,
    ),
    504: ("Gateway timeout: with flag UT, a timeout in the caller's sidecar fired.", CALLER),
}

# --------------------------------------------------------------------------- parsing

_ACCESS_LINE = re.compile(
    r'"(?P<method>[A-Z]+|-) (?P<path>\S+) (?P<protocol>HTTP/[\d.]+|-)"\s+(?P<status>\d{1,3})\s+(?P<flags>\S+)'
)
_MESH_LINE = re.compile(r"\]\s+(?P<direction>inbound|outbound)\s+\"")
_ENDPOINTS = re.compile(r"\s(?P<source>[a-z0-9-]+) -> (?P<destination>[a-z0-9-]+)\s")
_FLAG_LIST = re.compile(r"(?<![\w{\[])([A-Z]{2,5}(?:,[A-Z]{2,5})*)(?![\w}\]])")
_STATUS_ALONE = re.compile(r"^\s*(\d{3})(?:\s|$)")


def decode(text: str) -> Decoding:
    """Everything recognised in `text`, in the order found, each explained once."""
    text = text or ""
    result = Decoding(text=text[:MAX_INPUT_CHARS], truncated=len(text) > MAX_INPUT_CHARS)
    text = result.text
    seen: set[tuple[str, str]] = set()

    def add(meaning: Meaning | None) -> None:
        if meaning is not None and (meaning.kind, meaning.title) not in seen:
            seen.add((meaning.kind, meaning.title))
            result.meanings.append(meaning)

    line = _ACCESS_LINE.search(text)
    rest = text
    if line:
        result.line = {"status": line["status"], "flags": line["flags"], "method": line["method"], "path": line["path"]}
        direction = _MESH_LINE.search(text)
        if direction:
            result.line["direction"] = direction["direction"]
        ends = _ENDPOINTS.search(text)
        if ends:
            result.line["source"], result.line["destination"] = ends["source"], ends["destination"]
        for flag in [] if line["flags"] == "-" else line["flags"].split(","):
            meaning = _flag_meaning(flag)
            add(meaning) if meaning else result.unrecognised.append(flag)
        rest = text[: line.start()] + " " + text[line.end() :]
    else:
        alone = _STATUS_ALONE.match(text)
        if alone and int(alone[1]) in _STATUSES:
            result.line = {"status": alone[1]}

    if not line:
        for match in _FLAG_LIST.finditer(rest):
            parts = match[1].split(",")
            meanings = [_flag_meaning(part) for part in parts]
            if len(parts) == 1 and meanings[0] is None:
                continue  # a lone capitalised word is just a word
            for part, meaning in zip(parts, meanings, strict=True):
                add(meaning) if meaning else result.unrecognised.append(part)

    for match in _DETAIL_RE.finditer(rest):
        name = match[1].lower()
        meaning, side, causes, lab = _DETAILS[name]
        inner = match[2] or match[3] or ""
        extra = [_RESET_REASONS[part.lower()] for part in inner.split(",") if part.lower() in _RESET_REASONS]
        if extra:
            meaning = f"{meaning} Reason: {'; '.join(extra)}."
        add(Meaning("detail", match[0], f"Envoy detail {name}", meaning, side, causes, lab))

    found_tls = False
    for pattern, reason in _TLS_PATTERNS:
        match = pattern.search(rest)
        if match:
            found_tls = True
            add(_tls_meaning(reason, match[0]))
    if not found_tls:
        generic = _TLS_GENERIC.search(rest)
        if generic:
            add(
                Meaning(
                    "tls",
                    generic[0],
                    "TLS handshake failure (reason not given)",
                    "A TLS handshake failed. This text names the kind of failure but not its reason: "
                    "CERTIFICATE_VERIFY_FAILED means this side rejected the peer's certificate; an 'alert' "
                    "means the peer rejected ours. The rest of the message, or the other side's log, says why.",
                    EITHER,
                    ("an expired certificate", "a certificate from an untrusted CA", "plaintext against a STRICT port"),
                    "bad-certificate",
                )
            )

    for pattern, flag in _MESH_DETAILS:
        if pattern.search(rest):
            add(_flag_meaning(flag))

    status = result.line.get("status")
    if status is not None and int(status) in _STATUSES:
        meaning, side = _STATUSES[int(status)]
        add(Meaning("status", status, f"Status {status}", meaning, side))
    result.unrecognised = list(dict.fromkeys(result.unrecognised))
    return result


def flags_explained(flags: str) -> list[tuple[str, str]]:
    """[(flag, meaning)] for "UF,URX"; an unknown flag gets an empty meaning."""
    return [
        (flag, (_flag_meaning(flag) or Meaning("flag", flag, "", "", "")).meaning) for flag in flags.split(",") if flag
    ]
