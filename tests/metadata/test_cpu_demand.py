"""CPU demand learned per function from recorded CPU time (`metadata.models.fit_cpu_demand`,
`MetadataAccess.predict_cpu_demand`): a sleeping task demands little, a CPU-bound one its
threads' worth, and a crowded run teaches the same demand as a quiet one."""

from __future__ import annotations

from typing import Any

import pytest

from metadata.access import MetadataAccess
from metadata.models import MIN_CPU_DEMAND, fit_cpu_demand
from metadata.priors import TaskPrior
from tests.metadata.factories import PLATFORM, task

CPUS = [0.5, 1.0, 2.0]


def access_over(**fields: Any) -> MetadataAccess:
    """History of four attempts of wf.f:1 with the given fields."""
    records = [task("wf.f:1", run_id=f"dag-{i}", task_id=f"f-{i}", **fields) for i in range(4)]
    return MetadataAccess.from_records(records, **PLATFORM)


def test_a_sleeping_task_demands_almost_nothing() -> None:
    access = access_over(cpus=1.0, exec_s=1.0, cpu_s=0.02, contention_s=0.0)
    demand, source = access.predict_cpu_demand(["wf.f:1"], CPUS)
    assert demand[0].tolist() == pytest.approx([0.02, 0.02, 0.02])
    assert source.tolist() == ["history"]


def test_a_single_threaded_task_keeps_one_cpu_busy_and_no_more_than_it_has() -> None:
    """Observed on 2 CPUs using one: demand 1, capped at 0.5 on a half-CPU configuration."""
    access = access_over(cpus=2.0, exec_s=1.0, cpu_s=0.98, contention_s=0.0)
    demand, _ = access.predict_cpu_demand(["wf.f:1"], CPUS)
    assert demand[0].tolist() == pytest.approx([0.5, 0.98, 0.98])


def test_a_crowded_run_teaches_the_demand_of_a_quiet_one() -> None:
    """exec 1 s of which 0.9 s waiting for a core held by another worker, 0.1 s on CPU: the
    task is CPU-bound (demand 1 on 2 CPUs), not a 10 % user of the CPU."""
    access = access_over(cpus=2.0, exec_s=1.0, cpu_s=0.1, contention_s=0.9)
    demand, _ = access.predict_cpu_demand(["wf.f:1"], CPUS)
    assert demand[0, 2] == pytest.approx(1.0)


def test_a_task_that_filled_its_quota_keeps_the_prior_above_it() -> None:
    """Only seen at 1 CPU, using all of it: at 2 CPUs it demands what the prior says (the
    parallelism hint), never less than the one CPU it filled."""
    access = access_over(cpus=1.0, exec_s=1.0, cpu_s=0.99, contention_s=0.0)
    single, _ = access.predict_cpu_demand(["wf.f:1"], CPUS)
    assert single[0].tolist() == pytest.approx([0.5, 1.0, 1.0])
    parallel, _ = access.predict_cpu_demand(["wf.f:1"], CPUS, [TaskPrior(parallelism=2.0)])
    assert parallel[0].tolist() == pytest.approx([0.5, 1.0, 2.0])


def test_without_measured_cpu_time_the_prior_is_the_parallelism_hint() -> None:
    access = access_over(cpus=1.0, exec_s=1.0)  # old records: no cpu_s
    demand, source = access.predict_cpu_demand(
        ["wf.f:1", "wf.g:1"], CPUS, [TaskPrior(), TaskPrior(parallelism=4.0)]
    )
    assert demand.tolist() == [[0.5, 1.0, 1.0], [0.5, 1.0, 2.0]]
    assert source.tolist() == ["prior", "hint"]
    given = [[0.25, 0.5, 0.75], [0.5, 1.0, 1.0]]
    demand, _ = access.predict_cpu_demand(["wf.f:1", "wf.g:1"], CPUS, prior_demand=given)
    assert demand.tolist() == given


def test_fit_censors_attempts_that_used_all_their_cpus() -> None:
    """One attempt on 0.5 CPU filled it (censored: at least 0.5); two on 2 CPUs used 0.8 and
    1.2: the demand is their median, 1.0."""
    model = fit_cpu_demand([0.5, 2.0, 2.0], [0.5, 0.8, 1.2], [1.0, 1.0, 1.0])
    assert model is not None
    assert (model.demand, model.bound_only, model.samples) == (pytest.approx(1.0), False, 3)
    assert fit_cpu_demand([], [], []) is None
    idle = fit_cpu_demand([1.0], [0.0], [1.0])
    assert idle is not None and idle.demand == MIN_CPU_DEMAND


def test_start_up_figures_add_the_plan_download_to_the_start_up() -> None:
    from tests.metadata.factories import worker

    cold = [worker(f"dag-{i}", requested_at=100.0, started_at=100.25, plan_download_s=0.05)
            for i in range(3)]
    warm = [worker("dag-9", cold=False, requested_at=100.0, started_at=100.01)]
    access = MetadataAccess.from_records([], worker_records=cold + warm, **PLATFORM)
    assert access.start_up_figures() == {"cold_start_s": pytest.approx(0.3)}


def test_start_up_figures_read_the_store_without_a_prior_load(redis_url: str,
                                                              namespace: str) -> None:
    """A planner asks for start-ups before predicting anything: the store is read then."""
    from metadata.store import MetricsStore
    from tests.metadata.factories import worker

    with MetricsStore(redis_url, namespace) as store:
        for i in range(3):
            store.write_worker(worker(f"dag-{i}", requested_at=10.0, started_at=10.5,
                                      plan_download_s=0.25))
        access = MetadataAccess(store, **PLATFORM)
        assert access.start_up_figures() == {"cold_start_s": pytest.approx(0.75)}


def test_a_crowded_run_does_not_outvote_the_others_on_start_up() -> None:
    """Two runs of one worker started in 0.05 s; one run of ten crowded workers took 1 s each:
    per-run medians 0.05, 0.05, 1.0, so the figure is 0.05."""
    from tests.metadata.factories import worker

    quiet = [worker(f"dag-{i}", requested_at=0.0, started_at=0.04, plan_download_s=0.01)
             for i in range(2)]
    crowded = [worker("dag-9", worker_id=f"w-{i}", requested_at=0.0, started_at=0.99,
                      plan_download_s=0.01) for i in range(10)]
    access = MetadataAccess.from_records([], worker_records=quiet + crowded, **PLATFORM)
    assert access.start_up_figures()["cold_start_s"] == pytest.approx(0.05)


def test_a_workflow_plans_with_the_start_ups_of_its_own_runs() -> None:
    """A worker's start-up is mostly its imports: three runs of a numpy workflow took 0.4 s to
    start each worker, three of a pure-Python one 0.01 s. Each plans with its own; a workflow
    with no runs of its own (or too few) with every run's."""
    from tests.metadata.factories import worker

    heavy = [worker(f"dag-h{i}", requested_at=0.0, started_at=0.39, plan_download_s=0.01)
             for i in range(3)]
    light = [worker(f"dag-l{i}", requested_at=0.0, started_at=0.009, plan_download_s=0.001)
             for i in range(4)]
    runs = {**{w.run_id: "numpy_pipeline" for w in heavy}, **{w.run_id: "tree" for w in light}}
    access = MetadataAccess.from_records([], worker_records=heavy + light, run_workflows=runs,
                                         **PLATFORM)
    assert access.start_up_figures("numpy_pipeline")["cold_start_s"] == pytest.approx(0.4)
    assert access.start_up_figures("tree")["cold_start_s"] == pytest.approx(0.01)
    assert access.start_up_figures("new")["cold_start_s"] == pytest.approx(0.01)  # median of 7
    assert access.start_up_figures()["cold_start_s"] == pytest.approx(0.01)


def test_the_store_says_which_workflow_each_run_ran(redis_url: str, namespace: str) -> None:
    from metadata.store import MetricsStore
    from tests.metadata.factories import run, worker

    with MetricsStore(redis_url, namespace) as store:
        for i, workflow in enumerate(("heavy", "heavy", "heavy", "light")):
            store.write_run(run(f"dag-{i}", workflow=workflow))
            store.write_worker(worker(f"dag-{i}", requested_at=10.0 + i,
                                      started_at=10.0 + i + (0.5 if workflow == "heavy" else 0.01),
                                      plan_download_s=0.0))
        assert store.run_workflows(["dag-0", "dag-3", "dag-404"]) == {"dag-0": "heavy",
                                                                      "dag-3": "light"}
        access = MetadataAccess(store, **PLATFORM)
        assert access.start_up_figures("heavy")["cold_start_s"] == pytest.approx(0.5)


def test_start_ups_in_a_crowd_are_taken_back_to_their_time_alone() -> None:
    """Ten workers of one CPU started at once on a 2-CPU host, 1 s each: alone each would
    have taken 1 / (10 / 2) = 0.2 s (the host model stretches them back to 1 s itself).
    Without host_cpus the figure is the span as measured; a lone start-up is never changed."""
    from tests.metadata.factories import worker

    crowd = [worker(f"dag-{r}", worker_id=f"w-{i}", requested_at=0.0, started_at=0.99,
                    plan_download_s=0.01) for r in range(3) for i in range(10)]
    access = MetadataAccess.from_records([], worker_records=crowd, **PLATFORM)
    assert access.start_up_figures(host_cpus=2.0)["cold_start_s"] == pytest.approx(0.2)
    assert access.start_up_figures()["cold_start_s"] == pytest.approx(1.0)
    alone = [worker(f"dag-{r}", requested_at=0.0, started_at=0.3, plan_download_s=0.0)
             for r in range(3)]
    access = MetadataAccess.from_records([], worker_records=alone, **PLATFORM)
    assert access.start_up_figures(host_cpus=2.0)["cold_start_s"] == pytest.approx(0.3)
