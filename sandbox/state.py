"""What the experiment page shows, folded from the engine's events: the latest snapshot, a metrics history
for the sparklines, recent requests, and the notable events. Plain data; the live view, the polling
fallback and the finished page all build it the same way."""

from collections import deque
from dataclasses import asdict, dataclass, field

from sandbox.mesh.runtime.events import Event, Finished, Snapshot, Started, event_from_json

HISTORY_SHOWN = 120  # seconds of metrics in the sparklines
RECENT_SHOWN = 12  # requests in the timeline
NOTABLE_SHOWN = 40  # events in the log


@dataclass
class ViewState:
    started: Started | None = None
    snapshot: Snapshot | None = None
    history: list[dict] = field(default_factory=list)  # Snapshot.one_second() rows (older records: its first keys)
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_SHOWN))
    notable: list[dict] = field(default_factory=list)  # {"kind", "t", ...the event's fields}
    finished: Finished | None = None

    def apply(self, event: Event) -> set[str]:
        """Fold one event in; returns the names of the fragments it changed."""
        if isinstance(event, Snapshot):
            self.snapshot = event
            self.history.append(event.one_second())
            del self.history[:-HISTORY_SHOWN]
            self.recent.extend(event.recent)
            return {"status", "graph", "metrics", "requests", "breaker", "log"}  # log: the flags of this second
        if isinstance(event, Started):
            self.started = event
        if isinstance(event, Finished):
            self.finished = event
        self.notable.append({"kind": event.kind, **asdict(event)})
        del self.notable[:-NOTABLE_SHOWN]
        return {"log", "status"} if isinstance(event, (Started, Finished)) else {"log"}


def state_from_stream(entries: list[tuple], *, notable: list[dict] | None = None) -> ViewState:
    """Build the state from stream entries (oldest first). `notable`, from the database, replaces the
    notable events the capped stream may have dropped."""
    state = ViewState()
    for _entry_id, fields in entries:
        text = fields.get(b"event") or fields.get("event")
        try:
            state.apply(event_from_json(text))
        except (TypeError, ValueError):
            continue
    if notable is not None:
        state.notable = notable[-NOTABLE_SHOWN:]
    return state


def state_from_record(result: dict, *, notable: list[dict]) -> ViewState:
    """The finished page's state, from what the worker stored at the end."""
    state = ViewState(history=list(result.get("history") or [])[-HISTORY_SHOWN:], notable=notable[-NOTABLE_SHOWN:])
    last = result.get("last_snapshot")
    if last:
        import json

        snapshot = event_from_json(json.dumps({"kind": "snapshot", **last}))
        state.snapshot = snapshot
        state.recent.extend(snapshot.recent)
    return state
