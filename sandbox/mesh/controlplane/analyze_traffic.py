"""What the analyzer finds in traffic policies: retries against timeouts, outlier detection that ejects all or nothing, injected faults."""

from __future__ import annotations

from sandbox.mesh.config.model import RetryPolicy, Service
from sandbox.mesh.controlplane.findings import Finding, _finding


def worst_case_backoff(retry: RetryPolicy) -> float:
    """Longest total backoff the retry layer can wait: for retry n it waits up to
    min(base * (2**n - 1), max) (Envoy's fully jittered exponential backoff)."""
    return sum(min(retry.backoff_base * ((1 << n) - 1), retry.backoff_max) for n in range(1, retry.attempts + 1))


def _retry(service: Service) -> list[Finding]:
    traffic = service.traffic
    retry = traffic.retry
    timeout = traffic.timeout.request_timeout
    findings: list[Finding] = []
    if retry.attempts == 0:
        return findings
    if retry.budget_ratio == 0 and retry.budget_min_per_second == 0:
        findings.append(
            _finding(
                "MESH018",
                service.name,
                f"calls to {service.name} allow {retry.attempts} retries, but the retry budget is zero "
                "(budget_ratio 0 and budget_min_per_second 0): no retry will ever be sent.",
            )
        )
    if timeout is None and retry.per_try_timeout is None:
        findings.append(
            _finding(
                "MESH020",
                service.name,
                f"calls to {service.name} retry up to {retry.attempts} times but have no timeout at all "
                "(neither timeout nor per_try_timeout): a callee that hangs holds each call, and its "
                "connection, forever, and no retry ever starts. Set a timeout.",
            )
        )
        return findings
    if timeout is None:
        return findings
    if retry.per_try_timeout is None:
        findings.append(
            _finding(
                "MESH004",
                service.name,
                f"calls to {service.name} retry up to {retry.attempts} times under a {timeout:g}s "
                "request timeout, but without a per-try timeout: one hung try uses up the whole "
                "timeout and no retry happens. Set per_try_timeout.",
            )
        )
        return findings
    worst = (retry.attempts + 1) * retry.per_try_timeout + worst_case_backoff(retry)
    if worst > timeout:
        # How many tries surely fit: a try that cannot start before the deadline never runs.
        fitting = int(timeout // retry.per_try_timeout) if retry.per_try_timeout else 0
        findings.append(
            _finding(
                "MESH003",
                service.name,
                f"calls to {service.name}: {retry.attempts + 1} tries x {retry.per_try_timeout:g}s "
                f"+ up to {worst_case_backoff(retry):.3g}s of backoff = {worst:.3g}s, more than the "
                f"{timeout:g}s request timeout; when tries hang, only about {max(fitting, 1)} of them "
                "run before the caller gets 504 (UT).",
            )
        )
    return findings


def ejectable_replicas(replicas: int, max_ejection_percent: int) -> int:
    """How many replicas outlier detection may eject at once: max_ejection_percent of them,
    rounded down, but at least one when the percent is above zero (as Envoy does)."""
    if max_ejection_percent <= 0 or replicas <= 0:
        return 0
    return max(1, replicas * max_ejection_percent // 100)


def _outlier(service: Service) -> list[Finding]:
    outlier = service.traffic.outlier_detection
    if outlier.consecutive_5xx is None:
        return []
    ejectable = ejectable_replicas(service.replicas, outlier.max_ejection_percent)
    if ejectable == 0:
        return [
            _finding(
                "MESH006",
                service.name,
                f"outlier detection on {service.name} counts failures but max_ejection_percent is 0: "
                "it can never eject a replica.",
            )
        ]
    if ejectable >= service.replicas:
        which = "its only replica" if service.replicas == 1 else f"all {service.replicas} replicas"
        return [
            _finding(
                "MESH005",
                service.name,
                f"outlier detection on {service.name} may eject {which} "
                f"(max_ejection_percent {outlier.max_ejection_percent}): with fewer than half "
                "available, callers' proxies enter healthy panic and send to every replica, ejected "
                "ones included, so detection no longer steers traffic away from a failing replica.",
            )
        ]
    return []


def _fault(service: Service) -> list[Finding]:
    fault = service.traffic.fault
    findings: list[Finding] = []
    if fault.abort_percent > 0 or (fault.delay_percent > 0 and fault.delay_seconds > 0):
        parts = []
        if fault.abort_percent > 0:
            parts.append(f"{fault.abort_percent:g}% aborted with {fault.abort_status}")
        if fault.delay_percent > 0 and fault.delay_seconds > 0:
            parts.append(f"{fault.delay_percent:g}% delayed by {fault.delay_seconds:g}s")
        findings.append(
            _finding(
                "MESH016",
                service.name,
                f"callers' sidecars inject faults into calls to {service.name}: {', '.join(parts)}.",
            )
        )
    timeout = service.traffic.timeout.request_timeout
    if fault.delay_percent > 0 and timeout is not None and fault.delay_seconds >= timeout:
        findings.append(
            _finding(
                "MESH015",
                service.name,
                f"the injected delay ({fault.delay_seconds:g}s) is not shorter than the {timeout:g}s "
                f"request timeout: every delayed call to {service.name} ends in 504 (UT).",
            )
        )
    return findings
