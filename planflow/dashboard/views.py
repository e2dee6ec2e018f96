"""The JSON documents the pages draw: the run view, the runs list, the planner comparison.

The API returns them and the static report embeds them, so a page draws the same thing from
either. Every view is a plain JSON-able dict; figures come from `planflow.dashboard.figures`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from metadata.records import RunRecord
from planflow.dashboard import analysis, figures
from planflow.dashboard.layout import layout
from planflow.dashboard.rundata import RunData
from planflow.dashboard.states import STATE_COLORS, STATES, counts

COMPARE_RUNS_MAX = 200
"""Most recent runs of one workflow the comparison page reads worker records for."""


def run_view(data: RunData) -> dict[str, Any]:
    """Everything the run page draws for one run."""
    states = analysis.states(data)
    doc = data.doc
    view: dict[str, Any] = {
        "summary": analysis.summary(data), "states": states, "state_counts": counts(states),
        "state_order": list(STATES), "state_colors": STATE_COLORS,
        "components": analysis.time_components(data),
        "functions": analysis.function_rows(data), "graph": None,
        "live": data.live is not None,
    }
    if doc is not None:
        lay = layout(doc)
        view["graph"] = {
            "figure": figures.graph_figure(lay, states), "node_trace": figures.GRAPH_NODE_TRACE,
            "nodes": [{"label": n.label, "tasks": list(n.tasks), "critical": n.critical}
                      for n in lay.nodes],
            "aggregated": lay.aggregated, "tasks_total": lay.tasks_total}
    planned = analysis.planned_spans(doc) if doc else []
    order = [w["worker_id"] for w in doc["workers"]] if doc else []
    observed = analysis.observed_spans(data)
    view["gantt"] = figures.gantt_figure(planned, observed, order)
    view["gantt_rows"] = figures.gantt_rows(order, planned, observed)
    view["gantt_colors"] = figures.GANTT_COLORS
    view["pie"] = figures.pie_figure(view["components"])
    return view


def runs_view(rows: Sequence[Any], workflow: str | None = None,
              strategy: str | None = None) -> dict[str, Any]:
    """The runs page: rows (filtered by workflow and strategy), and every value of both."""
    all_rows = [r.to_json() for r in rows]
    shown = [r for r in all_rows if (not workflow or r["workflow"] == workflow)
             and (not strategy or r["strategy"] == strategy)]
    return {"runs": shown, "total": len(all_rows),
            "workflows": sorted({r["workflow"] for r in all_rows}),
            "strategies": sorted({r["strategy"] for r in all_rows}),
            "filter": {"workflow": workflow or "", "strategy": strategy or ""}}


def compare_rows(records: Iterable[RunRecord], summaries: Mapping[str, Mapping[str, Any]],
                 observed_gb_s: Mapping[str, float]) -> list[dict[str, Any]]:
    """Per strategy (sorted): runs, failures, mean predicted and observed makespan, the best
    observed one, the mean makespan prediction error |observed - predicted| / predicted, mean
    predicted and observed cost, and GB-s predicted (the plan) and observed (the workers)."""
    by: dict[str, list[RunRecord]] = {}
    for r in records:
        by.setdefault(r.strategy, []).append(r)
    out = []
    for strategy in sorted(by):
        runs = by[strategy]
        ok = [r for r in runs if r.ok]

        def mean(values: list[float]) -> float | None:
            return float(np.mean(values)) if values else None

        errors = [abs(r.observed_makespan_s - r.predicted_makespan_s) / r.predicted_makespan_s
                  for r in ok if r.predicted_makespan_s > 0]
        out.append({
            "strategy": strategy, "runs": len(runs), "failed": len(runs) - len(ok),
            "predicted_makespan_s": mean([r.predicted_makespan_s for r in ok]),
            "observed_makespan_s": mean([r.observed_makespan_s for r in ok]),
            "best_makespan_s": min((r.observed_makespan_s for r in ok), default=None),
            "makespan_error": mean(errors),
            "predicted_cost_usd": mean([r.predicted_cost_usd for r in ok]),
            "observed_cost_usd": mean([r.observed_cost_usd for r in ok
                                       if r.observed_cost_usd is not None]),
            "predicted_gb_s": mean([float(summaries[r.run_id]["gb_s"]) for r in ok
                                    if "gb_s" in summaries.get(r.run_id, {})]),
            "observed_gb_s": mean([observed_gb_s[r.run_id] for r in ok
                                   if observed_gb_s.get(r.run_id)]),
        })
    return out


def compared_runs(records: Sequence[RunRecord], workflow: str | None
                  ) -> tuple[str, list[RunRecord]]:
    """The workflow compared (the named one, else the first by name) and its most recent
    `COMPARE_RUNS_MAX` runs."""
    chosen = workflow or min((r.workflow for r in records), default="")
    return chosen, [r for r in records if r.workflow == chosen][-COMPARE_RUNS_MAX:]


def compare_view(records: Sequence[RunRecord], workflow: str | None,
                 summaries: Mapping[str, Mapping[str, Any]],
                 observed_gb_s: Mapping[str, float]) -> dict[str, Any]:
    """The planner comparison page for one workflow (`compared_runs`)."""
    chosen, mine = compared_runs(records, workflow)
    rows = compare_rows(mine, summaries, observed_gb_s)
    return {"workflow": chosen, "workflows": sorted({r.workflow for r in records}),
            "runs": len(mine), "rows": rows,
            "figure": figures.compare_figure(rows) if rows else None}
