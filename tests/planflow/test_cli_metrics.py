"""`planflow metrics` against a real Redis holding records of two runs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from metadata.records import RunRecord, TaskRecord
from metadata.store import MetricsStore
from planflow.cli import app


def _record(run: str, i: int, cpus: float) -> TaskRecord:
    exec_s = 0.2 + 0.8 / cpus
    return TaskRecord(
        run_id=run, task_id=f"work-{i}", function_key="mod.work:abc", function_name="work",
        worker_id="w0", memory_mb=int(cpus * 1769), cpus=cpus, attempt=1, started_at=1.0 + i,
        input_bytes=100.0, fetch_s=0.0, exec_s=exec_s, output_bytes=50.0, upload_s=0.0,
        update_s=0.0, invoke_s=0.0, peak_memory_mb=None, ok=True, error=None)


@pytest.fixture()
def store_args(redis_url: str, namespace: str) -> list[str]:
    with MetricsStore(redis_url, namespace) as store:
        for run, cpus in (("dag-1", 1.0), ("dag-2", 2.0), ("dag-3", 0.5), ("dag-4", 2.0)):
            store.write_tasks([_record(run, i, cpus) for i in range(4)])
            store.write_run(RunRecord(
                run_id=run, workflow="w", strategy="critical-path", submitted_at=1.0,
                finished_at=2.0, predicted_makespan_s=1.0, observed_makespan_s=1.1,
                predicted_cost_usd=0.0, observed_cost_usd=None, ok=True))
    return ["--redis", redis_url, "--namespace", namespace]


def _json(args: list[str]) -> dict:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


def test_list_show_accuracy_prune(store_args):
    listed = _json(["metrics", "list", *store_args, "--json"])
    assert [f["function_name"] for f in listed["functions"]] == ["work"]
    assert listed["functions"][0]["records"] == 16
    assert len(listed["runs"]) == 4

    shown = _json(["metrics", "show", "work", *store_args, "--json"])
    assert shown["functions"][0]["records"] == 16

    acc = _json(["metrics", "accuracy", *store_args, "--json"])["functions"]
    assert acc[0]["runs"] == 4
    assert acc[0]["duration_mape_pct"] is not None and acc[0]["duration_mape_pct"] < 15

    pruned = _json(["metrics", "prune", "--function", "work", *store_args, "--json"])
    assert pruned["functions_removed"] == 1
    assert _json(["metrics", "list", *store_args, "--json"])["functions"] == []


def test_show_explains_the_fitted_models_in_words(store_args):
    res = CliRunner().invoke(app, ["metrics", "show", "work", *store_args])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())
    assert "16 records (0 failed) from 4 runs" in text
    assert "duration: " in text and "s/MB of input" in text and "samples)" in text
    assert "output: " in text and "x input bytes" in text


def test_export_csv(store_args):
    res = CliRunner().invoke(app, ["metrics", "export", "--csv", *store_args])
    assert res.exit_code == 0
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("run_id,task_id") and len(lines) == 17


def test_unknown_function_is_an_input_error(store_args):
    res = CliRunner().invoke(app, ["metrics", "show", "nope", *store_args])
    assert res.exit_code == 2 and "no metrics recorded for function 'nope'" in res.stderr


def test_unreachable_redis_names_the_url_without_password():
    res = CliRunner().invoke(app, ["metrics", "list", "--redis",
                                   "redis://user:s3cret@127.0.0.1:1/0"])
    assert res.exit_code == 2
    assert "127.0.0.1:1" in res.stderr and "s3cret" not in res.stderr


def _run(run: str, workflow: str, at: float, predicted: float, observed: float,
         ok: bool = True) -> RunRecord:
    return RunRecord(run_id=run, workflow=workflow, strategy="critical-path", submitted_at=at,
                     finished_at=at + observed, predicted_makespan_s=predicted,
                     observed_makespan_s=observed, predicted_cost_usd=0.0, ok=ok)


def test_makespan_accuracy_compares_predicted_with_observed_per_run_and_workflow(
        redis_url, namespace):
    """a: errors +10 %, -20 %, 0 %; b: +50 %; a failed run is left out."""
    with MetricsStore(redis_url, namespace) as store:
        for rec in (_run("dag-a1", "a", 1.0, 1.1, 1.0), _run("dag-a2", "a", 2.0, 0.8, 1.0),
                    _run("dag-a3", "a", 3.0, 2.0, 2.0), _run("dag-b1", "b", 4.0, 3.0, 2.0),
                    _run("dag-x", "a", 5.0, 1.0, 9.0, ok=False)):
            store.write_run(rec)
    args = ["metrics", "accuracy", "--makespan", "--redis", redis_url, "--namespace", namespace]
    doc = _json([*args, "--json"])
    assert [r["run_id"] for r in doc["runs"]] == ["dag-a1", "dag-a2", "dag-a3", "dag-b1"]
    assert [round(r["error_pct"], 6) for r in doc["runs"]] == [10.0, -20.0, 0.0, 50.0]
    a, b = doc["workflows"]
    assert (a["workflow"], a["runs"], round(a["median_abs_error_pct"], 6),
            round(a["worst_abs_error_pct"], 6), round(a["last_error_pct"], 6)) == \
        ("a", 3, 10.0, 20.0, 0.0)
    assert (b["workflow"], b["runs"]) == ("b", 1)
    assert round(doc["median_abs_error_pct"], 6) == 15.0
    assert round(doc["worst_abs_error_pct"], 6) == 50.0

    newest = _json([*args, "--last", "1", "--json"])
    assert [r["run_id"] for r in newest["runs"]] == ["dag-a3", "dag-b1"]

    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.stderr
    assert "dag-a2" in res.stdout and "median |error| 10.0 %" in res.stdout


def test_makespan_accuracy_of_an_empty_store(redis_url, namespace):
    doc = _json(["metrics", "accuracy", "--makespan", "--redis", redis_url, "--namespace",
                 namespace, "--json"])
    assert doc == {"runs": [], "workflows": [], "median_abs_error_pct": None,
                   "worst_abs_error_pct": None}
