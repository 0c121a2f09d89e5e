"""The experiment page's live parts as HTML fragments, one template each under templates/sandbox/partials/.
The server-sent-events stream sends them as named events; the polling fallback and the page itself render
the same ones. Rendering touches no database: callers pass the experiment's fields and commands."""

from django.template.loader import render_to_string

from sandbox.mesh.config.flags import FLAG_EXPLANATIONS

from . import drawing, selectors
from .state import ViewState

FRAGMENTS = ("status", "graph", "metrics", "requests", "breaker", "log", "commands")


def experiment_facts(experiment) -> dict:
    """The experiment's fields a fragment shows, read once (the live view refreshes them on start and end)."""
    return {
        "id": experiment.pk,
        "topology": experiment.topology,
        "status": experiment.status,
        "status_label": experiment.get_status_display(),
        "end_reason": experiment.end_reason,
        "end_words": selectors.experiment_end_words(experiment=experiment) if not experiment.is_active else "",
        "is_active": experiment.is_active,
        "worker_host": experiment.worker_host,
        "started_at": experiment.started_at,
        "ended_at": experiment.ended_at,
        "url": experiment.get_absolute_url(),
    }


def event_words(event: dict) -> str:
    """A notable event in plain words."""
    kind = event.get("kind")
    if kind == "started":
        return f"The mesh is up: {event.get('processes', 0)} processes, ready in {event.get('ready_seconds', 0):.1f} s."
    if kind == "finding":
        return (
            f"Control-plane finding {event.get('code', '')} ({event.get('severity', '')}) on "
            f"{event.get('subject', '')}: {event.get('message', '')}"
        )
    if kind == "applied":
        return f"Applied: {event.get('said', '')}"
    if kind == "refused":
        return f"Refused: {event.get('reason', '')}"
    if kind == "exited":
        how = "as asked" if event.get("expected") else "unexpectedly"
        code = event.get("code")
        process = event.get("process", "")
        if process == "control_plane":
            who = "The control plane"
        else:  # "service" is the workload's own process: its app, beside its sidecar
            part = "app" if process == "service" else process
            who = f"The {part} of service {event.get('service', '')} (replica {event.get('replica', 0)})"
        return f"{who} exited {how}" + (f" with code {code}." if code is not None else ".")
    if kind == "nack":
        return (
            f"The sidecar of service {event.get('service', '')} (replica {event.get('replica', 0)}) rejected "
            f"configuration version "
            f"{event.get('version', 0)} and keeps serving version {event.get('serving_version', 0)}: "
            f"{event.get('reason', '')}"
        )
    if kind == "finished":
        return f"The experiment ended: {event.get('reason', '')}."
    return kind or "event"


def _flags_seen(state: ViewState) -> list[tuple[str, str, int]]:
    counts: dict[str, int] = {}
    if state.snapshot:
        for edge in state.snapshot.edges:
            for flag, count in edge.flags.items():
                counts[flag] = counts.get(flag, 0) + count
    for record in state.recent:
        for attempt in record.attempts:
            for flag in attempt.flags:
                counts.setdefault(flag, 0)
    return [
        (flag, FLAG_EXPLANATIONS.get(flag, "A flag this page does not know."), counts[flag]) for flag in sorted(counts)
    ]


def _tls_failures(state: ViewState) -> list[tuple[str, str, int]]:
    if not state.snapshot:
        return []
    return [
        (f"{edge.source} → {edge.destination}", reason, count)
        for edge in state.snapshot.edges
        for reason, count in sorted(edge.tls_failures.items())
    ]


def fragment_context(name: str, *, facts: dict, state: ViewState, commands=(), queue=None) -> dict:
    context: dict = {"experiment": facts, "state": state}
    if name == "status":
        context.update(queue=queue, snapshot=state.snapshot, started=state.started)
    elif name == "graph":
        topology = selectors.topology_get(facts["topology"])
        context["graph"] = drawing.graph_layout(topology, state.snapshot)
        context["graph_down"] = drawing.graph_layout(topology, state.snapshot, direction=drawing.DOWN)
    elif name == "metrics":
        context.update(charts=drawing.metrics_charts(state.history, commands), snapshot=state.snapshot)
    elif name == "requests":
        context["requests"] = list(reversed(state.recent))
        context["explanations"] = FLAG_EXPLANATIONS
    elif name == "breaker":
        context["edges"] = [edge for edge in state.snapshot.edges if edge.source != "loadgen"] if state.snapshot else []
    elif name == "log":
        context.update(
            events=[{**event, "words": event_words(event)} for event in reversed(state.notable)],
            flags=_flags_seen(state),
            tls=_tls_failures(state),
        )
    elif name == "commands":
        context["commands"] = list(commands)
    return context


def render_fragment(name: str, **kwargs) -> str:
    return render_to_string(f"sandbox/partials/{name}.html", fragment_context(name, **kwargs))


def render_fragments(names, **kwargs) -> dict[str, str]:
    return {name: render_fragment(name, **kwargs) for name in FRAGMENTS if name in names}
