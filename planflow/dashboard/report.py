"""`planflow report RUN_ID -o report.html`: one self-contained HTML file of a run, for sharing.

The file holds the run page's view (`views.run_view`: graph, Gantt, pie, per-function table),
every task's details (so a click on a task works offline), the dashboard's script and
stylesheet, and plotly.js from the plotly package: it opens in a browser with no server and
no network. It is written to a temporary name and renamed, so a half-written report never
stands under the real name.
"""

from __future__ import annotations

import os
from pathlib import Path

from planflow.dashboard import analysis, pages, views
from planflow.dashboard.source import RunSource


def report_html(source: RunSource, run_id: str) -> str:
    """The report of run `run_id` as one HTML document."""
    data = source.run(run_id)
    embedded = {"view": views.run_view(data), "tasks": analysis.task_details(data)}
    title = f"{data.workflow} · {run_id} · planflow report"
    return pages.page("run", title, run_id=run_id, embedded=embedded, inline=True,
                      namespace=source.namespace)


def write_report(source: RunSource, run_id: str, path: str | Path) -> Path:
    """Write the report of `run_id` to `path` (atomically); returns the path."""
    path = Path(path)
    text = report_html(source, run_id)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
