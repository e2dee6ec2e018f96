"""MetadataAccess: fallbacks in order with their source, platform figures, input validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metadata.access import MetadataAccess
from metadata.priors import (
    DEFAULT_DURATION_S,
    DEFAULT_OUTPUT_BYTES,
    HINT_SIGMA,
    PRIOR_SIGMA,
    TaskPrior,
    hint_duration,
)
from metadata.records import TaskRecord
from tests.metadata.factories import PLATFORM, history, task, worker

CPUS = np.array([0.5, 1.0, 2.0, 4.0, 8.0])


def measured() -> list[TaskRecord]:
    """wf.h ran at 1 and 2 CPUs (1 s of single-threaded work); wf.bad only ever failed."""
    hist = history("wf.h:1", lambda x, c: 1.0 / min(c, 1.0), cpus=[1.0, 2.0], inputs=[1e3])
    return [*hist, task("wf.bad:1", ok=False, error="boom", exec_s=0.01)]


def test_fallbacks_in_order_each_with_its_source() -> None:
    access = MetadataAccess.from_records(measured(), **PLATFORM)
    keys = ["wf.h:1", "wf.h:1", "wf.bad:1", "wf.new:1", "wf.new:1"]
    priors = [TaskPrior(expected_s=9.0), TaskPrior(), TaskPrior(expected_s=2.0, parallelism=4),
              TaskPrior(expected_s=0.5), TaskPrior()]
    pred = access.predict_durations(keys, np.full(5, 1e3), CPUS, priors)
    assert pred.source.tolist() == ["history", "history", "hint", "hint", "prior"]
    np.testing.assert_allclose(pred.mean_s[0], [2.0, 1.0, 1.0, 1.0, 1.0], rtol=0.01)  # not 9 s
    np.testing.assert_allclose(pred.mean_s[2], [16.0, 8.0, 4.0, 2.0, 2.0])  # Amdahl, p = 4
    np.testing.assert_allclose(pred.mean_s[3], [1.0, 0.5, 0.5, 0.5, 0.5])   # p = 1
    np.testing.assert_allclose(pred.mean_s[4], DEFAULT_DURATION_S * np.array([2, 1, 1, 1, 1]))
    np.testing.assert_allclose(pred.sigma[2:4], HINT_SIGMA)
    np.testing.assert_allclose(pred.sigma[4], PRIOR_SIGMA)
    assert pred.observed[0].tolist() == [False, True, True, False, False]
    assert pred.source_counts() == {"history": 2, "history-other-config": 0, "hint": 2,
                                    "prior": 1}


def test_history_only_at_other_configurations_says_so() -> None:
    access = MetadataAccess.from_records(measured(), **PLATFORM)
    pred = access.predict_durations(["wf.h:1"], [1e3], np.array([4.0, 8.0]))
    assert pred.source.tolist() == ["history-other-config"]
    assert MetadataAccess.source_counts(pred.source)["history-other-config"] == 1


def test_hint_formula_matches_the_documented_one() -> None:
    e, p = 3.0, 0.5
    for c in (0.25, 0.5, 1.0, 2.0):
        want = e * max(0.0, 1 - p) + e * p / min(c, max(p, 1.0))
        assert hint_duration(e, p, c) == pytest.approx(want)


def test_output_fallbacks() -> None:
    access = MetadataAccess.from_records(measured(), **PLATFORM)
    out, source = access.predict_output_bytes(
        ["wf.h:1", "wf.new:1", "wf.new:1"], [1e3, 1e3, 1e3],
        [TaskPrior(output_bytes=7), TaskPrior(output_bytes=5e6), TaskPrior()])
    assert source.tolist() == ["history", "hint", "prior"]
    np.testing.assert_allclose(out, [100, 5e6, DEFAULT_OUTPUT_BYTES])


def test_without_store_or_records_everything_comes_from_priors() -> None:
    access = MetadataAccess(None, **PLATFORM)
    pred = access.predict_durations(["a:1", "b:2"], [0, 0], CPUS)
    assert pred.source.tolist() == ["prior", "prior"]
    assert access.loaded == {"a:1", "b:2"}


def test_platform_figures_until_measurements_replace_them() -> None:
    access = MetadataAccess.from_records([], **PLATFORM)
    assert access.transfer_time(1e6) == pytest.approx(0.005 + 1e6 / 50e6)
    assert access.startup_time(1769, cold=True) == 1.5
    assert access.startup_time(1769, cold=False) == 0.05
    assert set(access.figure_sources().values()) == {"platform"}

    uploads = [task("wf.u:1", output_bytes=n, upload_s=0.002 + n / 1e8)
               for n in np.linspace(1e3, 1e7, 10).astype(int)]
    workers = ([worker(requested_at=0.0, started_at=0.8, memory_mb=1769, plan_bytes=int(b),
                       plan_download_s=0.001 + b / 1e9) for b in np.geomspace(1e4, 1e7, 8)]
               + [worker(requested_at=0.0, started_at=0.6, memory_mb=3538, plan_bytes=10**6,
                         plan_download_s=0.002)] * 2)
    access = MetadataAccess.from_records(uploads, worker_records=workers, **PLATFORM)
    assert access.transfer_time(1e6) == pytest.approx(0.002 + 1e6 / 1e8, rel=0.01)
    np.testing.assert_allclose(access.transfer_time(np.array([0.0, 1e7])), [0.002, 0.102],
                               rtol=0.01)
    assert access.startup_time(1769, cold=True) == pytest.approx(0.8)
    assert access.startup_time(10240, cold=True) == pytest.approx(0.8)  # all cold samples
    assert access.startup_time(1769, cold=False) == 0.05                 # no warm samples
    assert access.plan_download_time(2_000_000) == pytest.approx(0.003, rel=0.01)
    few = MetadataAccess.from_records(uploads, worker_records=workers[:3], **PLATFORM)
    assert few.plan_download_time(2_000_000) == pytest.approx(few.transfer_time(2_000_000))
    assert access.figure_sources() == {"transfer": "history", "cold_start": "history",
                                       "warm_start": "platform", "plan_download": "history"}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"input_bytes": [1.0]}, "one value per task"),
    ({"cpus": np.array([[1.0]])}, "1-D array"),
    ({"cpus": np.array([0.0, 1.0])}, "positive"),
    ({"priors": [TaskPrior()]}, "one entry per task"),
])
def test_bad_shapes_are_rejected(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"input_bytes": [1.0, 2.0], "cpus": CPUS, "priors": None} | kwargs
    with pytest.raises(ValueError, match=match):
        MetadataAccess(None, **PLATFORM).predict_durations(["a", "b"], **args)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(samples=st.lists(st.tuples(st.sampled_from([0.5, 1.0, 2.0, 3.0, 6.0]),
                                  st.floats(0, 1e8), st.floats(1e-4, 1e3)),
                        min_size=1, max_size=30))
def test_predictions_are_positive_and_never_slower_with_more_cpus(
        samples: list[tuple[float, float, float]]) -> None:
    records = [task("wf.any:1", cpus=c, input_bytes=int(x), exec_s=t) for c, x, t in samples]
    access = MetadataAccess.from_records(records, **PLATFORM)
    cpus = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 4.0, 6.0, 12.0])
    pred = access.predict_durations(["wf.any:1"] * 3, [0.0, 1e6, 1e9], cpus)
    assert np.all(np.isfinite(pred.mean_s)) and np.all(pred.mean_s > 0)
    assert np.all(np.diff(pred.mean_s, axis=1) <= 1e-12 * pred.mean_s[:, 1:])
    assert np.all(pred.quantile(0.95) >= pred.mean_s)


def test_records_with_impossible_values_do_not_train() -> None:
    bad = [task("wf.nan:1", exec_s=float("nan")), task("wf.nan:1", cpus=0.0)]
    access = MetadataAccess.from_records(bad, **PLATFORM)
    pred = access.predict_durations(["wf.nan:1"], [0.0], CPUS)
    assert pred.source.tolist() == ["prior"]
    assert access.duration_model("wf.nan:1") is None


def test_durations_are_learned_without_the_time_other_processes_took() -> None:
    """Recorded in a crowded run (most of each attempt spent waiting for a core): the model
    learns what the function takes, not what the crowd made it take."""
    crowded = [task("wf.f:1", run_id=f"dag-{i}", task_id=f"f-{i}", cpus=1.0, exec_s=1.0,
                    cpu_s=0.1, contention_s=0.9) for i in range(4)]
    access = MetadataAccess.from_records(crowded, **PLATFORM)
    predicted = access.predict_durations(["wf.f:1"], [1000], [1.0]).mean_s[0, 0]
    assert predicted == pytest.approx(0.1, rel=0.01)
