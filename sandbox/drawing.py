"""Geometry for the server-side SVG: the topology graph laid out by call depth, and sparkline polylines.
The templates draw; this module only computes positions, labels and health words (so every state has a
text label and nothing depends on colour).

The graph is laid out two ways: across (call depth left to right, for wide screens) and down (call depth
top to bottom, for phones). The page carries both and a CSS media query shows one: no script decides,
and a phone never has to scroll sideways to see the callee."""

import math
from dataclasses import dataclass, field

from sandbox.mesh.runtime.events import EdgeSnapshot, ServiceSnapshot, Snapshot

NODE_W, NODE_H = 170, 60
COLUMN_GAP, ROW_GAP = 180, 70  # room for edge labels, and for badges under a node
MARGIN = 16
LINE = 15  # text line height
# Down (phones): two nodes side by side still fit 390 px at a readable scale; between rows, room for the
# upper node's badges, the lock, and the edge's label, success line and badges above the lower node.
DOWN_COLUMN_GAP, DOWN_ROW_GAP = 16, 165
BADGE_ROOM = 3 * LINE + 4  # node badges sit under the node
ACROSS, DOWN = "across", "down"
LOADGEN = "load generator"


@dataclass
class Text:
    x: float
    y: float
    text: str


@dataclass
class Node:
    name: str
    x: float
    y: float
    health: str  # healthy | degraded | failing | down | idle | unknown
    lines: list[str] = field(default_factory=list)  # text under the name: success, rps
    badges: list[str] = field(default_factory=list)  # "fault: 50% 503", "cert: expired", "sidecar-0 down"

    @property
    def spoken(self) -> str:
        """The node in a sentence (the graph's description): "service a", never a bare "a"."""
        return spoken(self.name)

    @property
    def texts(self) -> list[Text]:
        return [Text(self.x + 8, self.y + 18 + LINE * (index + 1), line) for index, line in enumerate(self.lines)]

    @property
    def badge_texts(self) -> list[Text]:
        return [
            Text(self.x + 4, self.y + NODE_H + LINE * (index + 1), badge) for index, badge in enumerate(self.badges)
        ]


@dataclass
class Edge:
    source: str
    destination: str
    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    health: str
    lock: str  # "mtls" | "broken" | "plain" | ""
    badges: list[str] = field(default_factory=list)
    detail: str = ""  # the success line under the label
    direction: str = ACROSS

    @property
    def spoken(self) -> str:
        return f"{spoken(self.source)} to {spoken(self.destination)}"

    @property
    def mid_x(self) -> float:
        return (self.x1 + self.x2) / 2

    @property
    def mid_y(self) -> float:
        return (self.y1 + self.y2) / 2

    @property
    def text_x(self) -> float:
        # Down: the words stand above the callee, centred on it, so two callees side by side never share
        # the same spot (the midpoints of their edges are closer together than a label is wide).
        return self.mid_x if self.direction == ACROSS else self.x2

    @property
    def _down_top(self) -> float:
        count = 1 + bool(self.detail) + len(self.badges)
        return self.y2 - 10 - LINE * (count - 1)

    @property
    def label_y(self) -> float:
        return self.mid_y - 8 - LINE if self.direction == ACROSS else self._down_top

    @property
    def detail_y(self) -> float:
        return self.mid_y - 8 if self.direction == ACROSS else self._down_top + LINE

    @property
    def badge_texts(self) -> list[Text]:
        if self.direction == ACROSS:
            first = self.mid_y + 8
        else:
            first = self._down_top + LINE * (1 + bool(self.detail))
        return [Text(self.text_x, first + LINE * index, badge) for index, badge in enumerate(self.badges)]

    @property
    def lock_at(self) -> tuple[float, float]:
        if self.direction == ACROSS:
            return self.mid_x, self.mid_y
        # Down: just below the caller's badges, clear of the words above the callee.
        length = math.hypot(self.x2 - self.x1, self.y2 - self.y1) or 1.0
        along = min(BADGE_ROOM + 12, length / 2) / length
        return self.x1 + (self.x2 - self.x1) * along, self.y1 + (self.y2 - self.y1) * along

    @property
    def lock_x(self) -> float:
        return self.lock_at[0]

    @property
    def lock_y(self) -> float:
        return self.lock_at[1]


@dataclass
class Graph:
    width: float
    height: float
    nodes: list[Node]
    edges: list[Edge]
    direction: str = ACROSS


def spoken(name: str) -> str:
    return name if name == LOADGEN else f"service {name}"


def percent(value: float | None) -> str:
    return "no traffic" if value is None else f"{value * 100:.0f}%"


def health_of(success: float | None) -> str:
    if success is None:
        return "idle"
    if success >= 0.95:
        return "healthy"
    return "degraded" if success >= 0.5 else "failing"


def graph_layout(topology, snapshot: Snapshot | None, direction: str = ACROSS) -> Graph:
    """Across: columns by call depth from the load generator, rows in the order services are declared.
    Down: rows by call depth, services side by side in a row."""
    calls = {service.name: list(service.calls) for service in topology.services}
    pairs = [("loadgen", topology.entry)] + [(s, d) for s, targets in calls.items() for d in targets if d in calls]
    depth = {"loadgen": 0, topology.entry: 1}
    frontier = [topology.entry]
    while frontier:
        following = []
        for name in frontier:
            for target in calls.get(name, []):
                if target in calls and target not in depth:
                    depth[target] = depth[name] + 1
                    following.append(target)
        frontier = following
    for name in calls:
        depth.setdefault(name, max(depth.values()) + 1)  # unreachable services still show
    columns: dict[int, list[str]] = {}
    for name in ["loadgen", *calls]:
        columns.setdefault(depth[name], []).append(name)
    if direction == DOWN:
        width, height, position = _down_positions(columns)
    else:
        width, height, position = _across_positions(columns)

    services = {s.name: s for s in snapshot.services} if snapshot else {}
    edges = {(e.source, e.destination): e for e in snapshot.edges} if snapshot else {}
    nodes = [_loadgen_node(position["loadgen"], snapshot)]
    nodes += [_service_node(name, position[name], services.get(name)) for name in calls]
    drawn = [
        _edge(source, destination, position, edges.get((source, destination)), direction)
        for source, destination in pairs
    ]
    return Graph(width=width, height=height, nodes=nodes, edges=drawn, direction=direction)


Positions = dict[str, tuple[float, float]]


def _across_positions(columns: dict[int, list[str]]) -> tuple[float, float, Positions]:
    rows = max(len(names) for names in columns.values())
    height = MARGIN * 2 + rows * NODE_H + (rows - 1) * ROW_GAP + 3 * LINE  # badges under the last row
    width = MARGIN * 2 + len(columns) * NODE_W + (len(columns) - 1) * COLUMN_GAP
    position = {}
    for column, names in columns.items():
        column_height = len(names) * NODE_H + (len(names) - 1) * ROW_GAP
        top = MARGIN + (height - 3 * LINE - 2 * MARGIN - column_height) / 2
        for row, name in enumerate(names):
            position[name] = (MARGIN + column * (NODE_W + COLUMN_GAP), top + row * (NODE_H + ROW_GAP))
    return width, height, position


def _down_positions(rows: dict[int, list[str]]) -> tuple[float, float, Positions]:
    widest = max(len(names) for names in rows.values())
    # At least room for the longest edge label ("plain text · 300/s · p99 1200 ms") centred on a lone node.
    width = max(MARGIN * 2 + widest * NODE_W + (widest - 1) * DOWN_COLUMN_GAP, 250)
    height = MARGIN * 2 + len(rows) * NODE_H + (len(rows) - 1) * DOWN_ROW_GAP + BADGE_ROOM
    position = {}
    for row, names in rows.items():
        row_width = len(names) * NODE_W + (len(names) - 1) * DOWN_COLUMN_GAP
        left = (width - row_width) / 2
        for index, name in enumerate(names):
            position[name] = (left + index * (NODE_W + DOWN_COLUMN_GAP), MARGIN + row * (NODE_H + DOWN_ROW_GAP))
    return width, height, position


def _loadgen_node(at: tuple[float, float], snapshot: Snapshot | None) -> Node:
    lines = [f"{snapshot.rate:.0f} req/s target"] if snapshot else ["waiting"]
    if snapshot:
        lines.append(f"sees {percent(snapshot.effective_success)} ok")
    health = health_of(snapshot.effective_success) if snapshot else "unknown"
    return Node(LOADGEN, at[0], at[1], health, lines)


def _service_node(name: str, at: tuple[float, float], service: ServiceSnapshot | None) -> Node:
    if service is None:
        return Node(name, at[0], at[1], "unknown", ["waiting"])
    down = sorted(process for process, alive in service.alive.items() if not alive)
    health = "down" if down and len(down) >= len(service.alive) / 2 else health_of(service.actual_success)
    if down and health == "healthy":
        health = "degraded"
    badges = [f"{process} down" for process in down]
    if service.fault:
        badges.append(f"fault: {service.fault}")
    if service.cert_fault:
        badges.append(f"cert: {service.cert_fault.replace('_', ' ')}")
    lines = [f"{service.rps:.0f} req/s, {percent(service.actual_success)} ok", f"mTLS {service.mtls_mode}"]
    return Node(name, at[0], at[1], health, lines, badges)


def _edge(source: str, destination: str, position: dict, edge: EdgeSnapshot | None, direction: str = ACROSS) -> Edge:
    (sx, sy), (dx, dy) = position[source], position[destination]
    if direction == DOWN:  # from the caller's bottom edge to the callee's top edge, centre to centre
        x1, y1 = sx + NODE_W / 2, sy + NODE_H
        x2, y2 = dx + NODE_W / 2, dy
    else:
        x1, y1 = sx + NODE_W, sy + NODE_H / 2
        x2, y2 = dx, dy + NODE_H / 2
    if edge is None:
        return Edge(source, destination, x1, y1, x2, y2, "no data yet", "unknown", "", direction=direction)
    # Effective (what the caller got, after retries) and actual (what every try got) side by side.
    label = f"{edge.rps:.0f}/s · p99 {edge.p99_ms:.0f} ms"
    detail = f"ok {percent(edge.effective_success)} (tries {percent(edge.actual_success)})"
    lock = "broken" if edge.tls_failures else ("mtls" if edge.mtls else ("plain" if edge.rps else ""))
    badges = []
    if edge.circuit == "open":
        badges.append("circuit open")
    if edge.pending_overflow:
        badges.append(f"{edge.pending_overflow} overflowed")
    if edge.ejected:
        badges.append("ejected: " + ", ".join(edge.ejected))
    if edge.retries:
        badges.append(f"{edge.retries} retries")
    return Edge(
        source if source != "loadgen" else LOADGEN,
        destination,
        x1,
        y1,
        x2,
        y2,
        label,
        health_of(edge.effective_success),
        lock,
        badges,
        detail,
        direction,
    )


# --------------------------------------------------------------------------- sparklines

SPARK_W, SPARK_H = 240, 48


@dataclass
class Sparkline:
    title: str
    lines: list[dict]  # {"name", "points", "latest"}
    maximum: str
    width: int = SPARK_W
    height: int = SPARK_H
    markers: list[dict] = field(default_factory=list)  # {"x", "number", "label"}: the learner's commands


def command_markers(history: list[dict], commands) -> list[dict]:
    """Where each applied command falls on the sparklines' time axis (the learner's commands on a timeline)."""
    if len(history) < 2:
        return []
    count = len(history) - 1
    markers = []
    for number, command in enumerate(commands, start=1):
        if command.t is None or not history[0]["t"] <= command.t <= history[-1]["t"]:
            continue
        index = next(i for i, point in enumerate(history) if point["t"] >= command.t)
        markers.append({"x": round(index * SPARK_W / count, 1), "number": number, "label": command.description})
    return markers


def sparkline(
    title: str, history: list[dict], series: list[tuple[str, str]], *, unit: str, top: float | None = None
) -> Sparkline:
    """A polyline per series over the history's points; `top` fixes the scale (1 for success rates)."""
    values = [point[key] for point in history for _, key in series if point.get(key) is not None]
    ceiling = top if top is not None else max(values, default=0.0) * 1.1 or 1.0
    count = max(len(history) - 1, 1)
    lines = []
    for name, key in series:
        points = []
        for index, point in enumerate(history):
            value = point.get(key)
            if value is None:
                continue
            x = index * SPARK_W / count
            y = SPARK_H - min(value / ceiling, 1.0) * (SPARK_H - 2) - 1
            points.append(f"{x:.1f},{y:.1f}")
        latest = next((point[key] for point in reversed(history) if point.get(key) is not None), None)
        lines.append({"name": name, "key": key, "points": " ".join(points), "latest": _format(latest, unit)})
    return Sparkline(title, lines, _format(ceiling, unit))


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "%":
        return f"{value * 100:.0f}%"
    if unit == "ms":
        return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
    return f"{value:.0f} {unit}"


def metrics_charts(history: list[dict], commands=()) -> list[Sparkline]:
    markers = command_markers(history, commands)
    charts = [
        sparkline("Requests per second", history, [("rps", "rps")], unit="req/s"),
        sparkline(
            "Success: what callers see (effective) vs what the service answered (actual)",
            history,
            [("effective", "effective"), ("actual", "actual")],
            unit="%",
            top=1.0,
        ),
        sparkline("Latency at the entry", history, [("p50", "p50"), ("p95", "p95"), ("p99", "p99")], unit="ms"),
    ]
    for chart in charts:
        chart.markers = markers
    return charts
