"""The page's drawings from engine events: every state has words, not only a colour."""

from types import SimpleNamespace

from sandbox import drawing, selectors
from sandbox.fragments import render_fragment
from sandbox.mesh.runtime.events import (
    Attempt,
    CommandRefused,
    EdgeSnapshot,
    RequestRecord,
    ServiceSnapshot,
    Snapshot,
    Started,
)
from sandbox.state import ViewState

FACTS = {
    "id": 1,
    "topology": "pair",
    "status": "running",
    "status_label": "running",
    "end_reason": "",
    "is_active": True,
    "url": "/sandbox/experiments/1/",
    "worker_host": "",
    "started_at": None,
    "ended_at": None,
}


def broken_pair(t: float = 1.0) -> Snapshot:
    return Snapshot(
        t=t,
        rate=20,
        effective_success=0.6,
        p50_ms=3,
        p95_ms=9,
        p99_ms=20,
        requests=20,
        services=[
            ServiceSnapshot(
                name="a",
                replicas=1,
                rps=20,
                actual_success=0.6,
                mtls_mode="STRICT",
                alive={"app-0": True, "sidecar-0": True},
                cert_fault="expired",
            ),
            ServiceSnapshot(
                name="b",
                replicas=1,
                rps=30,
                actual_success=0.5,
                mtls_mode="STRICT",
                alive={"app-0": True, "sidecar-0": False},
                fault="50% 503",
            ),
        ],
        edges=[
            EdgeSnapshot(
                source="loadgen",
                destination="a",
                rps=20,
                effective_success=0.6,
                actual_success=0.6,
                p50_ms=3,
                p95_ms=9,
                p99_ms=20,
            ),
            EdgeSnapshot(
                source="a",
                destination="b",
                rps=30,
                effective_success=0.6,
                actual_success=0.5,
                p50_ms=3,
                p95_ms=9,
                p99_ms=20,
                retries=10,
                circuit="open",
                ejected=["b-0"],
                tls_failures={"certificate expired": 3},
                flags={"UO": 2},
            ),
        ],
        recent=[
            RequestRecord(
                id="1",
                source="a",
                destination="b",
                method="GET",
                path="/",
                status=503,
                flags=["URX"],
                attempts=[
                    Attempt(status=503, flags=["FI"], endpoint="b-0"),
                    Attempt(status=503, flags=["FI"], endpoint="b-0", backoff_ms=25),
                ],
            )
        ],
    )


def test_the_graph_names_every_fault_in_words():
    graph = drawing.graph_layout(selectors.topology_get("pair"), broken_pair())
    b = next(node for node in graph.nodes if node.name == "b")
    a = next(node for node in graph.nodes if node.name == "a")
    assert b.health == "down" and "sidecar-0 down" in b.badges and "fault: 50% 503" in b.badges
    assert "cert: expired" in a.badges
    edge = next(edge for edge in graph.edges if edge.destination == "b")
    assert edge.lock == "broken"
    assert {"circuit open", "ejected: b-0"} <= set(edge.badges)
    assert "ok 60% (tries 50%)" in edge.detail


def test_an_mtls_edge_carries_a_lock_and_plain_text_says_so():
    snapshot = broken_pair()
    snapshot.edges[1].tls_failures = {}
    snapshot.edges[1].mtls = True
    graph = drawing.graph_layout(selectors.topology_get("pair"), snapshot)
    locks = {edge.destination: edge.lock for edge in graph.edges}
    assert locks == {"a": "plain", "b": "mtls"}
    html = render_fragment("graph", facts=FACTS, state=ViewState(snapshot=snapshot))
    assert "lock lock-mtls" in html and "mTLS ·" in html and "service a to service b" in html


def test_the_shop_graph_lays_services_out_by_call_depth():
    graph = drawing.graph_layout(selectors.topology_get("shop"), None)
    x = {node.name: node.x for node in graph.nodes}
    assert x["load generator"] < x["frontend"] < x["cart"] < x["payments"]
    assert x["catalog"] == x["cart"]


def test_the_page_explains_flags_shows_attempts_and_the_engines_refusal():
    state = ViewState()
    state.apply(Started(processes=5, ready_seconds=1.0))
    state.apply(broken_pair())
    state.apply(CommandRefused(t=2, command={"action": "deny"}, reason="source: no service named 'z'"))
    log = render_fragment("log", facts=FACTS, state=state)
    assert "Upstream overflow" in log and "Refused: source: no service named" in log
    assert "certificate expired × 3" in log
    requests = render_fragment("requests", facts=FACTS, state=state)
    assert "try 2 after 25 ms backoff" in requests
    breaker = render_fragment("breaker", facts=FACTS, state=state)
    assert "open" in breaker and "b-0" in breaker


def test_commands_appear_on_the_metrics_timeline():
    history = [
        {"t": float(t), "rps": 20, "effective": 1.0, "actual": 1.0, "p50": 1, "p95": 2, "p99": 3} for t in range(10)
    ]
    commands = [
        SimpleNamespace(t=4.0, description="service b fails 50% of requests with 503"),
        SimpleNamespace(t=None, description="not applied yet"),
    ]
    charts = drawing.metrics_charts(history, commands)
    assert [marker["number"] for marker in charts[1].markers] == [1]
    html = render_fragment("metrics", facts=FACTS, state=ViewState(history=history), commands=commands)
    assert "command 1: service b fails 50%" in html


def test_a_result_stored_before_the_seconds_grew_renders_the_same_charts():
    # Stored histories older than Snapshot.one_second() hold only its first seven keys; the finished page
    # draws them exactly as it draws the rows stored today.
    from sandbox.state import state_from_record

    old = [
        {"t": float(t), "rps": 20.0, "effective": 0.9, "actual": 0.8, "p50": 1.0, "p95": 2.0, "p99": 3.0}
        for t in range(10)
    ]
    extras = {"requests": 20, "statuses": {"200": 18, "503": 2}, "actual_together": 0.85, "in_flight": 1}
    today = [{**point, **extras, "retries": 0, "ejections": 0, "tls_failures": 0, "open_circuits": 0} for point in old]

    def metrics(history):
        state = state_from_record({"history": history}, notable=[])
        return render_fragment("metrics", facts=FACTS, state=state, commands=[])

    assert metrics(old) == metrics(today)
    assert "Requests per second" in metrics(old)
