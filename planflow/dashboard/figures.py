"""Plotly figures of a run, as plain JSON-able dicts (`{"data": [...], "layout": {...}}`).

Built here, in Python, for the live pages and the static report alike, so both show the same
pictures; the browser only draws them (plotly.js, served from the plotly package) and, while a
run goes, recolours the graph's nodes. Dicts rather than `plotly.graph_objects`: validating a
10,000-bar figure object costs seconds, and the tests check every figure against plotly's
schema instead (`plotly.graph_objects.Figure(fig)` raises on a bad property).

- graph: edges (grey), critical edges (`CRITICAL_COLOR`), then the nodes: one marker per task
  or group (`planflow.dashboard.layout`), filled by state, outlined when critical. The nodes
  trace is last (`GRAPH_NODE_TRACE`); `customdata` holds each node's index.
- gantt: one row per worker (or per band of workers past `GANTT_ROWS_MAX`), the planned
  timeline above the observed one in each row. Past `GANTT_BARS_MAX` bars, touching bars of
  one row and kind merge into one (the title says so).
- pie: where time went (`analysis.COMPONENTS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from planflow.dashboard.analysis import Span
from planflow.dashboard.layout import GraphLayout
from planflow.dashboard.states import STATE_COLORS

CRITICAL_COLOR = "#7b3294"
"""Outline of critical-path nodes and colour of critical-path edges."""

GRAPH_NODE_TRACE = 2
"""Index of the nodes trace in the graph figure (what the browser recolours)."""

NODE_PX = 18
"""Marker size of a one-task node."""

LABELLED_NODES_MAX = 64
"""Node labels are drawn beside the markers only for graphs at most this big."""

GANTT_ROWS_MAX = 80
"""Worker rows drawn one per worker; past this, consecutive workers share a row."""

GANTT_BARS_MAX = 4000
"""Bars drawn one per span; past this, touching spans of one row and kind merge."""

GANTT_ROW_PX = 26
"""Height of one Gantt row in the browser."""

MERGE_GAP_FRACTION = 0.002
"""Spans of one row closer than this fraction of the timeline merge (large Gantt charts)."""

GANTT_COLORS: dict[str, str] = {
    "planned start & wait": "#e5e5e5", "planned": "#c6dbef", "planned, critical": "#dac4e6",
    "start-up": "#969696",
    "input fetch": "#9ecae1", "observed": "#3182bd", "observed, critical": CRITICAL_COLOR,
    "failed attempt": "#de2d26"}

PIE_COLORS: tuple[str, ...] = (
    "#3182bd", "#9ecae1", "#fd8d3c", "#fdd0a2", "#636363", "#bdbdbd", "#31a354", "#756bb1")


def _axis_off() -> dict[str, Any]:
    return {"visible": False, "showgrid": False, "zeroline": False}


def graph_figure(lay: GraphLayout, states: Mapping[str, str]) -> dict[str, Any]:
    """The layered task graph coloured by `states` (task id -> state)."""
    xs = [n.x for n in lay.nodes]
    ys = [-float(n.generation) for n in lay.nodes]

    def segments(edges: Sequence[tuple[int, int]]) -> tuple[list[Any], list[Any]]:
        ex: list[Any] = []
        ey: list[Any] = []
        for a, b in edges:
            ex += [xs[a], xs[b], None]
            ey += [ys[a], ys[b], None]
        return ex, ey

    ex, ey = segments(lay.edges)
    cx, cy = segments(lay.critical_edges)
    colors = [node_color(n.tasks, states) for n in lay.nodes]
    biggest = max((len(n.tasks) for n in lay.nodes), default=1)
    sizes = [12 + 24 * math.sqrt(len(n.tasks) / biggest) if lay.aggregated else NODE_PX
             for n in lay.nodes]
    labelled = len(lay.nodes) <= LABELLED_NODES_MAX
    nodes = {
        "type": "scatter", "mode": "markers+text" if labelled else "markers", "name": "tasks",
        "x": xs, "y": ys, "customdata": list(range(len(lay.nodes))),
        "text": [n.label for n in lay.nodes] if labelled else None,
        "textposition": "middle right", "textfont": {"size": 10},
        "hovertext": [_hover(n.label, n.tasks, states) for n in lay.nodes], "hoverinfo": "text",
        "marker": {"color": colors, "size": sizes,
                   "line": {"color": [CRITICAL_COLOR if n.critical else "#636363"
                                      for n in lay.nodes],
                            "width": [2.5 if n.critical else 1 for n in lay.nodes]}},
    }
    data = [
        {"type": "scatter", "mode": "lines", "x": ex, "y": ey, "hoverinfo": "skip",
         "line": {"color": "#bdbdbd", "width": 1}, "name": "dependencies"},
        {"type": "scatter", "mode": "lines", "x": cx, "y": cy, "hoverinfo": "skip",
         "line": {"color": CRITICAL_COLOR, "width": 3}, "name": "critical path"},
        nodes,
    ]
    gens = max((n.generation for n in lay.nodes), default=0) + 1
    title = f"{lay.tasks_total} tasks in {gens} generations"
    if lay.aggregated:
        title += f", drawn as {len(lay.nodes)} groups (function x generation)"
    return {"data": data, "layout": {
        "title": {"text": title, "font": {"size": 14}}, "showlegend": False,
        "hovermode": "closest", "clickmode": "event", "dragmode": "pan",
        "xaxis": _axis_off(), "yaxis": _axis_off(),
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "height": min(900, 200 + 60 * gens), "plot_bgcolor": "#ffffff"}}


def node_color(tasks: Sequence[str], states: Mapping[str, str]) -> str:
    """A node's fill: its task's state, or for a group the most urgent state among its tasks
    (failed, running, ready, waiting, planned, finished, not-run); the browser uses the same
    rule when it recolours live."""
    seen = {states.get(t, "planned") for t in tasks}
    for s in ("failed", "running", "ready", "waiting", "planned", "finished", "not-run"):
        if s in seen:
            return STATE_COLORS[s]
    return STATE_COLORS["planned"]


def _hover(label: str, tasks: Sequence[str], states: Mapping[str, str]) -> str:
    if len(tasks) == 1:
        return f"{tasks[0]}: {states.get(tasks[0], 'planned')}"
    counts: dict[str, int] = {}
    for t in tasks:
        s = states.get(t, "planned")
        counts[s] = counts.get(s, 0) + 1
    return f"{label}<br>" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def gantt_rows(workers: Sequence[str], planned: Sequence[Span], observed: Sequence[Span]
               ) -> dict[str, str]:
    """Worker -> the Gantt row it is drawn in (itself, or its band past `GANTT_ROWS_MAX`)."""
    order = list(dict.fromkeys([*workers, *(s.worker for s in (*planned, *observed))]))
    band = max(1, math.ceil(len(order) / GANTT_ROWS_MAX))
    return {w: _band_label(order, i // band, band) for i, w in enumerate(order)}


def gantt_figure(planned: Sequence[Span], observed: Sequence[Span],
                 workers: Sequence[str]) -> dict[str, Any]:
    """Planned above observed, one row per worker (`workers` gives the order)."""
    row_of = gantt_rows(workers, planned, observed)
    rows = list(dict.fromkeys(row_of.values()))
    band = max(1, math.ceil(len(row_of) / GANTT_ROWS_MAX))
    spans = {
        "planned start & wait": [s for s in planned if s.kind == "startup"],
        "planned": [s for s in planned if not s.critical and s.kind == "task"],
        "planned, critical": [s for s in planned if s.critical and s.kind == "task"],
        "start-up": [s for s in observed if s.kind == "startup"],
        "input fetch": [s for s in observed if s.kind == "fetch"],
        "observed": [s for s in observed if s.kind == "task" and s.ok and not s.critical],
        "observed, critical": [s for s in observed if s.kind == "task" and s.ok and s.critical],
        "failed attempt": [s for s in observed if s.kind == "task" and not s.ok],
    }
    merged = sum(len(v) for v in spans.values()) > GANTT_BARS_MAX
    end = max((s.finish_s for v in spans.values() for s in v), default=1.0)
    data = [_bars(name, group, row_of, merged, end * MERGE_GAP_FRACTION)
            for name, group in spans.items() if group]
    title = "planned (upper bar) and observed (lower bar) timeline by worker"
    notes = []
    if band > 1:
        notes.append(f"{len(row_of)} workers in rows of {band}")
    if merged:
        notes.append("touching bars merged")
    if notes:
        title += " (" + "; ".join(notes) + ")"
    return {"data": data, "layout": {
        "title": {"text": title, "font": {"size": 14}}, "barmode": "group", "bargap": 0.25,
        "bargroupgap": 0.05, "hovermode": "closest",
        "xaxis": {"title": {"text": "seconds from the run's start"}, "rangemode": "tozero"},
        "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": rows,
                  "autorange": "reversed", "automargin": True},
        "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
        "margin": {"l": 60, "r": 20, "t": 80, "b": 50},
        "height": 160 + GANTT_ROW_PX * len(rows)}}


def _band_label(order: Sequence[str], band_index: int, band: int) -> str:
    members = order[band_index * band:(band_index + 1) * band]
    return members[0] if len(members) == 1 else f"{members[0]}…{members[-1]}"


def _bars(name: str, spans: Sequence[Span], row_of: Mapping[str, str], merge: bool,
          gap: float) -> dict[str, Any]:
    items = [(row_of[s.worker], s.start_s, s.finish_s, s.task_id or s.worker) for s in spans]
    if merge:
        items = _merged(items, gap)
    return {
        "type": "bar", "orientation": "h", "name": name,
        "offsetgroup": "planned" if name.startswith("planned") else "observed",
        "y": [i[0] for i in items], "base": [i[1] for i in items],
        "x": [max(i[2] - i[1], 0.0) for i in items], "text": [i[3] for i in items],
        "textposition": "none", "marker": {"color": GANTT_COLORS[name]},
        "hovertemplate": "%{text}<br>%{base:.3f} s + %{x:.3f} s<extra>" + name + "</extra>"}


def _merged(items: list[tuple[str, float, float, str]], gap: float
            ) -> list[tuple[str, float, float, str]]:
    out: list[tuple[str, float, float, str]] = []
    count = 0
    for row, start, finish, _label in sorted(items):
        if out and out[-1][0] == row and start <= out[-1][2] + gap:
            count += 1
            out[-1] = (row, out[-1][1], max(out[-1][2], finish), f"{count} spans")
        else:
            count = 1
            out.append((row, start, finish, _label))
    return out


def pie_figure(components: Mapping[str, float]) -> dict[str, Any]:
    """Where time went: seconds per component, every component listed (zero ones too)."""
    labels = list(components)
    total = sum(components.values())
    return {"data": [{
        "type": "pie", "labels": labels, "values": [components[k] for k in labels],
        "sort": False, "direction": "clockwise", "hole": 0.35,
        "marker": {"colors": list(PIE_COLORS[:len(labels)])},
        "textinfo": "percent", "textposition": "inside",
        "hovertemplate": "%{label}: %{value:.3f} s (%{percent})<extra></extra>"}],
        "layout": {"title": {"text": f"where time went ({total:.2f} s summed over tasks and "
                                     "workers)" if total > 0 else "where time went: no metric "
                                     "records yet (workers write theirs as they finish)",
                             "font": {"size": 14}},
                   "legend": {"orientation": "v"}, "height": 380,
                   "margin": {"l": 10, "r": 10, "t": 50, "b": 10}}}


def compare_figure(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per strategy: mean predicted and observed makespan (bars, left) and cost (right)."""
    names = [r["strategy"] for r in rows]

    def bar(key: str, name: str, color: str, second: bool) -> dict[str, Any]:
        return {"type": "bar", "name": name, "x": names, "y": [r.get(key) for r in rows],
                "marker": {"color": color}, "xaxis": "x2" if second else "x",
                "yaxis": "y2" if second else "y", "offsetgroup": name}

    data = [bar("predicted_makespan_s", "predicted makespan (s)", "#9ecae1", False),
            bar("observed_makespan_s", "observed makespan (s)", "#3182bd", False),
            bar("predicted_cost_usd", "predicted cost ($)", "#fdd0a2", True),
            bar("observed_cost_usd", "observed cost ($)", "#e6550d", True)]
    return {"data": data, "layout": {
        "title": {"text": "mean per strategy", "font": {"size": 14}}, "barmode": "group",
        "xaxis": {"domain": [0, 0.46]}, "xaxis2": {"domain": [0.54, 1], "anchor": "y2"},
        "yaxis": {"title": {"text": "makespan (s)"}},
        "yaxis2": {"title": {"text": "cost ($)"}, "anchor": "x2"},
        "legend": {"orientation": "h", "y": -0.15}, "height": 380,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 60}}}
