"""Gantt chart of a simulated run: one row per worker, the critical path highlighted.

Each worker row shows its start-up (dark grey = cold, light grey = warm), idle waiting (thin
line), input fetches (light blue, ready -> start), execution (blue; red on the critical path) and
uploads (orange). matplotlib is imported inside `draw_gantt` (Agg backend) so that importing the
simulator, and the CLI, stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulator.model import SimInput
from simulator.result import SimResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

ROW_HEIGHT = 0.8
"""Bar height as a fraction of a worker row."""
MAX_LABELLED_TASKS = 60
"""Task labels are drawn inside bars only for plans at most this big."""
FIGURE_WIDTH_IN = 12.0
ROW_INCHES = 0.35
COLORS = {
    "cold": "#555555",
    "warm": "#bbbbbb",
    "fetch": "#9ecae1",
    "run": "#3182bd",
    "critical": "#de2d26",
    "upload": "#fd8d3c",
}


def draw_gantt(
    result: SimResult,
    inp: SimInput,
    path: str | Path,
    task_labels: Sequence[str] | None = None,
    worker_labels: Sequence[str] | None = None,
) -> None:
    """Write the timeline of `result` (simulated from `inp`) as an image to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    w = inp.n_workers
    height = max(2.5, 1.5 + ROW_INCHES * w)
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH_IN, height))
    try:
        _draw_workers(ax, result)
        _draw_tasks(ax, result, inp, task_labels)
        ax.set_yticks(range(w))
        ax.set_yticklabels(worker_labels if worker_labels else [f"worker {k}" for k in range(w)])
        ax.invert_yaxis()
        ax.set_xlabel("time (s)")
        ax.set_xlim(0, max(result.makespan_s, 1e-9) * 1.02)
        ax.set_title(
            f"makespan {result.makespan_s:.3f} s · cost ${result.cost_usd:.6f} · "
            f"{result.gb_s:.2f} GB-s · {result.cold_starts} cold starts"
        )
        legend = [Patch(color=c, label=name) for name, c in COLORS.items()]
        ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=6)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def _draw_workers(ax: Axes, result: SimResult) -> None:
    for k in range(result.worker_start_s.shape[0]):
        start, ready = result.worker_start_s[k], result.worker_ready_s[k]
        color = COLORS["cold"] if result.worker_cold[k] else COLORS["warm"]
        ax.broken_barh([(start, ready - start)], (k - ROW_HEIGHT / 2, ROW_HEIGHT), color=color)
        ax.hlines(k, ready, result.worker_stop_s[k], color="#999999", linewidth=0.8)


def _draw_tasks(
    ax: Axes, result: SimResult, inp: SimInput, task_labels: Sequence[str] | None
) -> None:
    critical = result.critical_mask
    start, finish = result.task_start_s, result.task_finish_s
    spans = {
        "fetch": (result.task_ready_s, start, np.ones_like(critical)),
        "run": (start, finish, ~critical),
        "critical": (start, finish, critical),
        "upload": (finish, result.task_done_s, np.ones_like(critical)),
    }
    for kind, (begin, end, mask) in spans.items():
        keep = mask & (end > begin)
        rows = inp.worker[keep]
        for k in np.unique(rows):
            row = rows == k
            lefts, widths = begin[keep][row].tolist(), (end - begin)[keep][row].tolist()
            xs = list(zip(lefts, widths, strict=True))
            ax.broken_barh(
                xs, (k - ROW_HEIGHT / 2, ROW_HEIGHT), color=COLORS[kind],
                edgecolor="white", linewidth=0.3,
            )
    if inp.n_tasks <= MAX_LABELLED_TASKS:
        for u in range(inp.n_tasks):
            label = task_labels[u] if task_labels else str(u)
            middle = (start[u] + finish[u]) / 2
            ax.text(
                middle, int(inp.worker[u]), label, ha="center", va="center", fontsize=7,
                color="white", clip_on=True,
            )
