"""What people read in a terminal: `planflow show` fits 80 columns, lists every worker and
(up to its cap) every task, cutting no cell; `--help` shows no value for flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from planflow import render_show
from planflow.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def plan64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tree-reduction example with n=64: 63 tasks on 32 workers (lambda)."""
    out = tmp_path_factory.mktemp("show") / "tree.plan"
    res = CliRunner().invoke(app, ["compile", str(EXAMPLES / "tree_reduction.py"), "-p",
                                   "n=64", "--platform", "lambda", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.stderr
    return out


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_show_fits_the_terminal_and_cuts_no_cell(plan64: Path, columns: int) -> None:
    res = CliRunner().invoke(app, ["show", str(plan64)], env={"COLUMNS": str(columns)})
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert "…" not in res.stdout  # wrapped or dropped on purpose, never ellipsized
    for k in range(63):
        assert f" add-{k} " in res.stdout or f" add-{k}\n" in res.stdout or \
            f"add-{k}," in res.stdout
    assert "32 workers" in res.stdout and "63 tasks" in res.stdout
    workers = [line.split()[0] for line in lines if line.strip().startswith("w")
               and line.split()[0][1:].isdigit()]
    assert workers == [f"w{k}" for k in range(32)]


def test_show_drops_columns_deliberately_when_narrow(plan64: Path) -> None:
    def header(columns: int) -> list[str]:
        out = CliRunner().invoke(app, ["show", str(plan64)], env={"COLUMNS": str(columns)})
        return next(line.split() for line in out.stdout.splitlines()
                    if line.split()[:1] == ["task"])

    # every id is <function>-<n>: a function column would say nothing
    assert header(120) == ["task", "MB", "worker", "start", "finish", "slack", "crit",
                           "optimizations"]
    assert header(60) == ["task", "MB", "worker", "start", "crit", "optimizations"]


def test_a_large_plan_says_how_many_rows_it_left_out() -> None:
    doc = {"workflow": "w", "strategy": "s", "platform": "p", "makespan_s": 1.0,
           "cost_usd": 0.0, "gb_s": 0.0,
           "workers": [{"worker_id": f"w{k}", "memory_mb": 128, "cpus": 0.1, "tasks": [f"f-{k}"]}
                       for k in range(50)],
           "tasks": [{"id": f"f-{k}", "function": "f", "memory_mb": 128, "worker": f"w{k % 50}",
                      "pred_start_s": 0.0, "pred_finish_s": 1.0, "critical": False,
                      "optimizations": []} for k in range(150)]}
    from rich.console import Console

    console = Console(width=80, record=True)
    console.print(render_show.tasks_table(doc["tasks"], 80))
    assert console.export_text().count(" f-") == render_show.TASKS_SHOWN
    assert render_show.short_s(0.35) == "350ms" and render_show.short_s(1.014) == "1.01s"


def _commands() -> list[list[str]]:
    names = [[c.name or ""] for c in app.registered_commands]
    names += [[g.name or "", c.name or ""] for g in app.registered_groups
              for c in g.typer_instance.registered_commands]
    return names


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_help_shows_no_value_for_flags(command: list[str]) -> None:
    res = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "100"})
    assert res.exit_code == 0
    assert "<bool>" not in res.stdout
    assert "--help" in res.stdout
