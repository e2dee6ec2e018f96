"""`planflow metrics` back-ends: leave-one-run-out accuracy, summaries, CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest

from metadata.records import TaskRecord
from metadata.reports import accuracy, summarize, write_csv
from metadata.store import EXPORT_COLUMNS, MetricsStore
from tests.metadata.factories import history, task


def resize(x: float, c: float) -> float:
    return (0.02 + 5e-9 * x) * (0.25 + 0.75 / min(c, 2.0))


def records() -> list[TaskRecord]:
    """wf.resize: 3 runs at varied CPUs and inputs with 3 % noise; wf.once: a single run."""
    noisy = history("wf.resize:1", resize, cpus=[1.0, 2.0, 4.0], inputs=[1e6, 1e7, 5e7, 1e8],
                    noise=0.03, output=lambda x: 0.25 * x, seed=3)
    return [*noisy, task("wf.once:1", run_id="dag-9")]


@pytest.fixture()
def store(redis_url: str, namespace: str) -> Iterator[MetricsStore]:
    with MetricsStore(redis_url, namespace) as s:
        s.write_tasks(records())
        yield s


def test_leave_one_run_out_accuracy_per_function() -> None:
    by_key = {a.function_key: a for a in accuracy(records())}
    good = by_key["wf.resize:1"]
    assert (good.runs, good.samples) == (3, 36)
    assert good.duration_mape_pct is not None and good.duration_mape_pct < 5.0
    assert good.duration_p90_ape_pct is not None
    assert good.duration_mape_pct <= good.duration_p90_ape_pct < 10.0
    assert good.output_mape_pct == pytest.approx(0.0, abs=0.01)
    once = by_key["wf.once:1"]
    assert once.runs == 1 and once.duration_mape_pct is None and once.output_p90_ape_pct is None


def test_accuracy_from_the_store_equals_accuracy_from_records(store: MetricsStore) -> None:
    assert accuracy(store) == accuracy(records())
    assert [a.function_key for a in accuracy(store, ["wf.once:1"])] == ["wf.once:1"]


def test_summary_by_function_name(store: MetricsStore) -> None:
    [summary] = summarize(store, "resize")
    assert summary.function_key == "wf.resize:1"
    assert (summary.records, summary.failed, summary.runs) == (36, 0, 3)
    assert summary.configurations == {1.0: 12, 2.0: 12, 4.0: 12}
    assert summary.duration is not None and summary.duration.shape_learned
    assert summary.duration.cap == pytest.approx(2.0, rel=0.05)
    assert summarize(store, "nothing") == []


def test_csv_export(store: MetricsStore) -> None:
    out = io.StringIO()
    assert write_csv(store, out) == 37
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert {r["function_name"] for r in rows} == {"resize", "once"}
