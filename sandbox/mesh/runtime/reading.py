"""What the observer reads from a running mesh in one interval, before any arithmetic."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SidecarReading:
    stats: dict
    records: list[dict]


@dataclass
class Reading:
    """One interval's raw material: what each replica answered (None: it did not)."""

    apps: dict[tuple[str, int], dict | None] = field(default_factory=dict)
    sidecars: dict[tuple[str, int], SidecarReading | None] = field(default_factory=dict)
    # Which services the control plane hands a bad certificate on purpose (its status is the one record).
    cert_faults: dict[str, str] = field(default_factory=dict)
