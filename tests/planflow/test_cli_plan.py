"""`planflow compile` and `planflow simulate` as a user meets them: one JSON object with
`--json` whose numbers match the human output, explanations, what-if options, clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planflow.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TREE = str(EXAMPLES / "tree_reduction.py")


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose compiles see no recorded metrics: a fresh embedded store, no URL."""
    monkeypatch.setenv("PLANFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANFLOW_REDIS_URL", raising=False)
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def as_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    code, out, err = invoke(runner, *args, "--json")
    assert code == 0, err
    return json.loads(out)  # exactly one JSON object, nothing else on stdout


@pytest.fixture()
def trace(tmp_path: Path) -> Path:
    """A WfFormat 1.5 file: two parallel tasks (one multi-threaded, one light) and a merge."""
    spec = [
        {"id": "prep_1", "name": "prep_1", "parents": [], "children": ["heavy_2", "light_3"],
         "inputFiles": ["in.dat"], "outputFiles": ["p.dat"]},
        {"id": "heavy_2", "name": "heavy_2", "parents": ["prep_1"], "children": ["merge_4"],
         "inputFiles": ["p.dat"], "outputFiles": ["h.dat"]},
        {"id": "light_3", "name": "light_3", "parents": ["prep_1"], "children": ["merge_4"],
         "inputFiles": ["p.dat"], "outputFiles": ["l.dat"]},
        {"id": "merge_4", "name": "merge_4", "parents": ["heavy_2", "light_3"], "children": [],
         "inputFiles": ["h.dat", "l.dat"], "outputFiles": ["out.dat"]},
    ]
    files = [{"id": f, "sizeInBytes": size} for f, size in
             [("in.dat", 1e6), ("p.dat", 2e6), ("h.dat", 3e6), ("l.dat", 1e5), ("out.dat", 1e3)]]
    execution = [{"id": "prep_1", "runtimeInSeconds": 5.0, "avgCPU": 100},
                 {"id": "heavy_2", "runtimeInSeconds": 60.0, "avgCPU": 400,
                  "memoryInBytes": 3e9},
                 {"id": "light_3", "runtimeInSeconds": 10.0, "avgCPU": 50},
                 {"id": "merge_4", "runtimeInSeconds": 2.0, "avgCPU": 100}]
    doc = {"name": "toy-trace", "schemaVersion": "1.5",
           "workflow": {"specification": {"tasks": spec, "files": files},
                        "execution": {"tasks": execution}}}
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(doc))
    return path


def test_compile_json_is_the_plan_with_its_file_and_prediction_sources(runner, tmp_path):
    out = tmp_path / "t.plan"
    doc = as_json(runner, "compile", TREE, "-p", "n=8", "-o", str(out))
    assert doc["plan_file"] == str(out) and out.exists()
    assert doc["strategy"] == "critical-path" and doc["platform"] == "local"
    assert doc["prediction_sources"] == {"history": 0, "history-other-config": 0, "hint": 0,
                                         "prior": 7}
    for key in ("workflow", "tasks", "workers", "makespan_s", "cost_usd", "gb_s",
                "critical_path", "baseline", "downgrades", "cold_starts"):
        assert key in doc
    assert doc["makespan_s"] <= doc["baseline"]["makespan_s"] * (1 + 1e-9)
    assert doc["cost_usd"] < doc["baseline"]["cost_usd"]
    assert doc["critical_path"][-1] == doc["tasks"][-1]["id"]


def test_compile_explains_the_plan_beside_the_baseline(runner, tmp_path, trace):
    code, out, err = invoke(runner, "compile", str(trace), "-o", str(tmp_path / "t.plan"))
    assert code == 0, err
    for text in ("critical-path on local", "best everywhere", "makespan", "GB-s",
                 "cold starts", "critical path (", "largest downgrades", "saves"):
        assert text in out
    doc = as_json(runner, "compile", str(trace), "-o", str(tmp_path / "t.plan"))
    heavy = next(t for t in doc["tasks"] if t["function"].startswith("heavy"))
    assert heavy["memory_mb"] >= 2862  # 3e9 bytes of memory recorded
    assert heavy["critical"]
    light = next(t for t in doc["tasks"] if t["function"].startswith("light"))
    assert light["memory_mb"] < 1769 and light["reasons"][0].startswith("downgrade: slack")


@pytest.mark.parametrize("strategy", ["critical-path", "uniform", "wukong", "octoflows"])
def test_every_strategy_compiles_and_show_has_reasons_per_task(runner, tmp_path, trace,
                                                               strategy):
    plan = tmp_path / f"{strategy}.plan"
    doc = as_json(runner, "compile", str(trace), "--strategy", strategy, "-o", str(plan))
    assert doc["strategy"] == strategy
    shown = as_json(runner, "show", str(plan))
    assert [t["reasons"] for t in shown["tasks"]] == [t["reasons"] for t in doc["tasks"]]
    assert all("slack_s" in t and "optimizations" in t for t in shown["tasks"])


def test_compile_options_reach_the_plan(runner, tmp_path, trace):
    plan = str(tmp_path / "t.plan")
    off = as_json(runner, "compile", str(trace), "-o", plan, "--no-clustering",
                  "--no-delayed-io", "--no-prewarm", "--no-preload")
    assert len(off["workers"]) == len(off["tasks"])
    assert not any(set(t["optimizations"]) - {"downgrade"} for t in off["tasks"])
    slow = as_json(runner, "compile", str(trace), "-o", plan, "--slowdown", "0.5",
                   "--rounds", "3", "--quantile", "0.9")
    assert slow["options"]["slowdown"] == 0.5 and slow["options"]["quantile"] == 0.9
    assert slow["makespan_s"] <= slow["baseline"]["makespan_s"] * 1.5 + 1e-9
    local = as_json(runner, "compile", str(trace), "-o", plan, "--platform", "local")
    assert local["platform"] == "local"
    assert {w["memory_mb"] for w in local["workers"]} <= {256, 512, 1024, 1769, 2048, 3008,
                                                          3538}
    uniform = as_json(runner, "compile", str(trace), "-o", plan, "--strategy", "uniform",
                      "--memory-mb", "3008")
    assert {t["memory_mb"] for t in uniform["tasks"]} == {3008}


def test_deadline_trades_time_for_cost(runner, tmp_path, trace):
    plan = str(tmp_path / "t.plan")
    fast = as_json(runner, "compile", str(trace), "-o", plan)
    slack = as_json(runner, "compile", str(trace), "-o", plan,
                    "--deadline-s", str(fast["makespan_s"] * 2))
    assert fast["makespan_s"] < slack["makespan_s"] <= fast["makespan_s"] * 2 + 1e-9
    assert slack["cost_usd"] < fast["cost_usd"]


def test_simulate_json_numbers_match_the_table(runner, tmp_path):
    plan = str(tmp_path / "t.plan")
    as_json(runner, "compile", TREE, "-p", "n=8", "-o", plan)
    args = ("simulate", plan, "--all", "1024", "--set", "add-0=3008")
    doc = as_json(runner, *args)
    assert doc["changes"] == ["every worker on 1024 MB", "add-0 -> 3008 MB (1 tasks, 1 workers)"]
    for key in ("makespan_s", "cost_usd", "gb_s", "cold_starts"):
        assert doc[key] == doc["scenario"][key]
        assert doc["difference"][key] == pytest.approx(doc["scenario"][key]
                                                       - doc["compiled"][key])
    code, out, err = invoke(runner, *args)
    assert code == 0, err
    row = re.search(r"GB-s\s*│\s*([\d.]+)\s*│\s*([\d.]+)\s*│\s*([+-][\d.]+)", out)
    assert row is not None
    assert [float(x) for x in row.groups()] == pytest.approx(
        [doc["compiled"]["gb_s"], doc["scenario"]["gb_s"], doc["difference"]["gb_s"]],
        abs=1e-3)
    assert f"${doc['scenario']['cost_usd']:.6f}" in out


def test_simulate_compiles_a_module_or_trace_first_and_draws_a_gantt(runner, tmp_path, trace):
    doc = as_json(runner, "simulate", TREE, "-p", "n=4", "--samples", "5", "--seed", "3")
    assert doc["workflow"] == "tree_reduction" and doc["strategy"] == "critical-path"
    assert set(doc["scenario"]["samples"]["makespan_s"]) == {"p50", "p90", "p99", "mean"}
    png = tmp_path / "g.png"
    doc = as_json(runner, "simulate", str(trace), "--platform", "local", "--gantt", str(png))
    assert doc["platform"] == "local" and png.stat().st_size > 0


@pytest.mark.parametrize(("args", "message"), [
    (["compile", TREE, "--strategy", "magic"], "unknown strategy 'magic'"),
    (["compile", TREE, "--slowdown", "-1"], "--slowdown must be a fraction >= 0"),
    (["compile", TREE, "--platform", "mars"], "--platform mars"),
    (["compile", TREE, "--deadline-s", "0.001"], "the fastest predicted makespan"),
    (["compile", TREE, "--strategy", "uniform", "--memory-mb", "100"], "no such configuration"),
    (["simulate", TREE, "--set", "add"], "expected PATTERN=MEMORY_MB"),
    (["simulate", TREE, "--set", "nothing*=1024"], "no task id or function name matches"),
    (["simulate", TREE, "--all", "5"], "--all 5: the platform has no such configuration"),
])
def test_errors_are_one_clear_line(runner, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(runner, *args)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err
