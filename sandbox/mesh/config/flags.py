"""Envoy-style response flags: the one table of the flags this mesh produces, and their set type.

Every plane raises, reads and prints flags through `Flag` and `Flags`, so a flag the table does not
declare cannot be produced, and the site, the decoder and the access log explain a flag with the
same sentence (`Flag.explanation`).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Flag(StrEnum):
    # The declaration order is the order of Envoy's text form ("UF,URX"), so keep it.
    UF = "UF"
    UO = "UO"
    URX = "URX"
    UT = "UT"
    UH = "UH"
    NR = "NR"
    FI = "FI"
    DI = "DI"
    DC = "DC"
    UC = "UC"
    RBAC = "RBAC"
    RL = "RL"
    DPE = "DPE"

    @property
    def explanation(self) -> str:
        return FLAG_EXPLANATIONS[self]


FLAG_EXPLANATIONS: dict[Flag, str] = {
    Flag.UF: "Upstream connection failure: the proxy could not connect to the upstream "
    "(refused, unreachable, or the TLS handshake failed).",
    Flag.UO: "Upstream overflow: the circuit breaker was open (too many requests in flight or "
    "waiting), so the proxy refused at once instead of queueing more load.",
    Flag.URX: "Retries exhausted: every allowed retry was used and the last try still failed.",
    Flag.UT: "Upstream request timeout: no complete answer within the timeout (per try or overall).",
    Flag.UH: "No healthy upstream: the destination has no endpoint registered. (When outlier detection "
    "has ejected more than half of them, the proxy uses all of them instead: healthy panic.)",
    Flag.NR: "No route: the proxy knows no service by the requested name.",
    Flag.FI: "Fault injected: the request was aborted on purpose by a fault-injection policy.",
    Flag.DI: "Delay injected: the request was held back on purpose by a fault-injection policy.",
    Flag.DC: "Downstream connection termination: the caller went away before the answer.",
    Flag.UC: "Upstream connection termination: the upstream closed or reset the connection mid-request.",
    Flag.RBAC: "Denied by authorization policy: the caller's identity, method or path is not allowed.",
    Flag.RL: "Rate limited: the service's own sidecar let in no more than its local rate limit allows "
    "(requests per second, plus a burst) and answered 429 at once, without calling the service.",
    Flag.DPE: "Downstream protocol error: the caller's request could not be taken as sent (for example a path "
    "that cannot be normalised, or one reserved for the mesh's own admin API).",
}

NO_FLAGS_TEXT = "-"  # Envoy prints "-" for a response without flags


class Flags(frozenset[Flag]):
    """An immutable set of flags. Its text form is Envoy's: "-" for none, else comma-joined in `Flag` order."""

    def __new__(cls, flags: Iterable[str] = ()) -> Flags:
        # Flag(name) refuses a word the table does not declare (ValueError).
        return super().__new__(cls, (Flag(flag) for flag in flags))

    def __or__(self, other: Iterable[str]) -> Flags:  # type: ignore[override]
        return Flags([*self, *other])

    def added(self, *flags: Flag) -> Flags:
        return self | flags

    def in_order(self) -> tuple[Flag, ...]:
        """The flags in their declared order (a set's own order is arbitrary)."""
        return tuple(flag for flag in Flag if flag in self)

    @property
    def text(self) -> str:
        return ",".join(self.in_order()) or NO_FLAGS_TEXT

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Flags({self.text!r})"

    @classmethod
    def parse(cls, text: str) -> Flags:
        """The inverse of `text`: "-" or "" is no flag; an undeclared word raises ValueError."""
        if text in ("", NO_FLAGS_TEXT):
            return cls()
        return cls(text.split(","))
