"""Gantt chart of a simulated run: one row per worker, the critical path highlighted.

Each worker shows its start-up (dark grey = cold, light grey = warm), idle waiting (thin line),
input fetches (light blue, ready -> start), execution (blue; red on the critical path) and
uploads (orange). The title names what is drawn (the caller's `title`: workflow, strategy,
platform, scenario) above the figures of the run; the legend sits under the title, listing only
what appears.

Readable at any size: past `MAX_ROWS` workers, consecutive workers share a row (`band` of them,
each a thin lane inside it, so every worker is still drawn) and the subtitle says so; the
image's height stops growing there. A task's label is drawn inside its bar only when the bar is
wide enough for the text (`LABEL_CHAR_PX` per character) and the rows are one worker each.
matplotlib is imported inside `draw_gantt` (Agg backend) so that importing the simulator, and
the CLI, stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulator.model import SimInput
from simulator.result import SimResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

ROW_HEIGHT = 0.8
"""Bar height as a fraction of a row."""
MAX_ROWS = 40
"""Most rows drawn; past this many workers, `band` consecutive workers share a row."""
FIGURE_WIDTH_IN = 12.0
ROW_INCHES = 0.3
HEADER_INCHES = 1.25
"""Room above the axes for the title, the subtitle and the legend."""
FOOTER_INCHES = 0.6
"""Room below the axes for the time axis."""
DPI = 120
LABEL_FONT_PT = 7
LABEL_CHAR_PX = LABEL_FONT_PT * 0.62 * DPI / 72
"""Approximate width of one label character, in pixels."""
COLORS = {
    "cold start": "#555555",
    "warm start": "#bbbbbb",
    "fetch": "#9ecae1",
    "run": "#3182bd",
    "critical": "#de2d26",
    "upload": "#fd8d3c",
}


def rows_for(n_workers: int, max_rows: int = MAX_ROWS) -> int:
    """Workers per row: 1 up to `max_rows` workers, then as many as keep rows <= max_rows."""
    return max(1, math.ceil(n_workers / max_rows))


def draw_gantt(
    result: SimResult,
    inp: SimInput,
    path: str | Path,
    task_labels: Sequence[str] | None = None,
    worker_labels: Sequence[str] | None = None,
    title: str = "",
) -> None:
    """Write the timeline of `result` (simulated from `inp`) as an image to `path`; `title`
    names the drawing (e.g. workflow, strategy, platform and scenario)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    w = inp.n_workers
    band = rows_for(w)
    n_rows = math.ceil(w / band)
    axes_in = max(1.0, ROW_INCHES * n_rows)
    height = HEADER_INCHES + axes_in + FOOTER_INCHES
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH_IN, height))
    fig.subplots_adjust(left=0.09, right=0.98, top=1 - HEADER_INCHES / height,
                        bottom=FOOTER_INCHES / height)
    try:
        used = _draw_workers(ax, result, band)
        used |= _draw_tasks(ax, result, inp, band)
        span = max(result.makespan_s, 1e-9) * 1.02
        ax.set_xlim(0, span)
        if band == 1 and task_labels is not None:
            _label_tasks(ax, result, inp, task_labels, span)
        names = worker_labels if worker_labels else [f"w{k}" for k in range(w)]
        ax.set_yticks(range(n_rows))
        ax.set_yticklabels([_row_label(names, r, band) for r in range(n_rows)])
        ax.set_ylim(n_rows - 0.5, -0.5)
        ax.set_xlabel("time (s)")
        ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
        ax.set_axisbelow(True)
        fig.text(0.5, 1 - 0.22 / height, title or "simulated run", ha="center", va="top",
                 fontsize=12, fontweight="bold")
        fig.text(0.5, 1 - 0.5 / height, _subtitle(result, w, band), ha="center", va="top",
                 fontsize=9, color="#444444")
        legend = [Patch(color=c, label=name) for name, c in COLORS.items() if name in used]
        fig.legend(handles=legend, loc="upper center", ncol=len(legend), frameon=False,
                   bbox_to_anchor=(0.5, 1 - 0.72 / height), fontsize=9)
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)


def _subtitle(result: SimResult, workers: int, band: int) -> str:
    text = (f"makespan {result.makespan_s:.3f} s · cost ${result.cost_usd:.6f} · "
            f"{result.gb_s:.2f} GB-s · {workers} workers · {result.cold_starts} cold starts")
    if band > 1:
        text += f" · {band} workers per row (thin lanes), {math.ceil(workers / band)} rows"
    return text


def _row_label(names: Sequence[str], row: int, band: int) -> str:
    members = names[row * band:(row + 1) * band]
    return members[0] if len(members) == 1 else f"{members[0]}..{members[-1]}"


def _lane(k: np.ndarray | int, band: int) -> tuple[np.ndarray, float]:
    """(bottom y, height) of worker k's lane: its row's bar, or a slice of it in a band."""
    k = np.asarray(k)
    row, lane = k // band, k % band
    height = ROW_HEIGHT / band
    return row - ROW_HEIGHT / 2 + lane * height, height


def _draw_workers(ax: Axes, result: SimResult, band: int) -> set[str]:
    used: set[str] = set()
    for k in range(result.worker_start_s.shape[0]):
        start, ready = result.worker_start_s[k], result.worker_ready_s[k]
        kind = "cold start" if result.worker_cold[k] else "warm start"
        bottom, height = _lane(k, band)
        if ready > start:
            used.add(kind)
            ax.broken_barh([(start, ready - start)], (float(bottom), height),
                           color=COLORS[kind])
        ax.hlines(float(bottom) + height / 2, ready, result.worker_stop_s[k], color="#999999",
                  linewidth=0.8 if band == 1 else 0.4, zorder=0.5)  # under the bars
    return used


def _draw_tasks(ax: Axes, result: SimResult, inp: SimInput, band: int) -> set[str]:
    critical = result.critical_mask
    start, finish = result.task_start_s, result.task_finish_s
    spans = {
        "fetch": (result.task_ready_s, start, np.ones_like(critical)),
        "run": (start, finish, ~critical),
        "critical": (start, finish, critical),
        "upload": (finish, result.task_done_s, np.ones_like(critical)),
    }
    used: set[str] = set()
    edge = 0.3 if band == 1 else 0.0
    for kind, (begin, end, mask) in spans.items():
        keep = mask & (end > begin)
        workers = inp.worker[keep]
        for k in np.unique(workers):
            mine = workers == k
            lefts, widths = begin[keep][mine].tolist(), (end - begin)[keep][mine].tolist()
            bottom, height = _lane(int(k), band)
            ax.broken_barh(list(zip(lefts, widths, strict=True)), (float(bottom), height),
                           color=COLORS[kind], edgecolor="white", linewidth=edge)
            used.add(kind)
    return used


def _label_tasks(ax: Axes, result: SimResult, inp: SimInput, labels: Sequence[str],
                 span: float) -> None:
    """Each task's label inside its bar, when the bar is wide enough to hold it."""
    px_per_s = FIGURE_WIDTH_IN * DPI * 0.89 / span  # the axes take ~89% of the width
    start, finish = result.task_start_s, result.task_finish_s
    for u in range(inp.n_tasks):
        label = labels[u]
        if (finish[u] - start[u]) * px_per_s < (len(label) + 1) * LABEL_CHAR_PX:
            continue
        ax.text((start[u] + finish[u]) / 2, int(inp.worker[u]), label, ha="center",
                va="center", fontsize=LABEL_FONT_PT, color="white", clip_on=True)
