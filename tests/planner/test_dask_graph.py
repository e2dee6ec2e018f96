"""Dask collections become task graphs: one task per node of Dask's optimised graph, readable
ids that no token or hash seed changes, function keys that follow the callable, the result
rebuilt in the collection's shape, and clear errors for what cannot be converted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import planflow
from planflow import task, workflow
from planner.dask_graph import graph_from_dask
from planner.errors import DaskGraphError, UsageError, WorkflowDefinitionError
from planner.graph import TaskGraph
from planner.loader import load_graph
from runtime.inline import run_inline
from tests.planner import dask_programs as programs
from tests.runtime import plans

ROOT = Path(__file__).resolve().parents[2]


def inline(graph: TaskGraph) -> Any:
    return run_inline(plans.one_worker(graph)).result


@pytest.mark.parametrize("name", sorted(programs.PROGRAMS))
def test_every_program_gives_what_dask_computes(name: str) -> None:
    output = programs.PROGRAMS[name]()
    programs.assert_same(inline(graph_from_dask(output)), programs.expected(output))


def test_a_delayed_tree_is_one_task_per_call_with_its_edges() -> None:
    """leaf-0 leaf-1  leaf-2 leaf-3
           \\  /        \\  /
           add-0       add-1
               \\      /
                add-2"""
    g = graph_from_dask(programs.delayed_tree(4))
    assert [n.id for n in g.nodes] == ["leaf-0", "leaf-1", "add-0", "leaf-2", "leaf-3",
                                       "add-1", "add-2"]
    assert g.upstream("add-0") == ("leaf-0", "leaf-1")
    assert g.upstream("add-2") == ("add-0", "add-1")
    assert g.sink == "add-2" and g.workflow == "add"
    assert {n.function for n in g.nodes} == {"leaf", "add"}
    assert g.code["add-0"].fn is programs._add.__wrapped__  # the user's function itself


def test_block_ids_carry_the_block_index() -> None:
    x = da.ones((4, 6), chunks=2)
    g = graph_from_dask(x.sum(axis=0, split_every=2))
    ids = {n.id for n in g.nodes}
    assert {"sum-0,0", "sum-1,2", "finalize-0"} <= ids
    assert all(" " not in t and t.count("-") >= 1 for t in ids)


def test_layers_sharing_a_name_prefix_count_on() -> None:
    a = da.random.default_rng(1).random((4, 4), chunks=2)
    b = da.random.default_rng(2).random((4, 4), chunks=2)
    ids = [n.id for n in graph_from_dask((a + b) * 2).nodes]
    assert "random-0,0" in ids and "random_2-0,0" in ids
    assert len(ids) == len(set(ids))


def test_a_single_collection_ends_in_its_finalize_task_a_structure_in_outputs() -> None:
    x = da.arange(8, chunks=4)
    single = graph_from_dask(x * 2)
    assert single.sink == "finalize-0"
    assert single.upstream("finalize-0") == ("arange-mul-0", "arange-mul-1")  # fused
    both = graph_from_dask({"doubled": x * 2, "total": x.sum(), "note": "kept"})
    assert both.sink == "_outputs-0"
    result = inline(both)
    assert result["note"] == "kept" and result["total"] == 28
    np.testing.assert_array_equal(result["doubled"], np.arange(8) * 2)


def test_shared_sub_expressions_are_computed_once() -> None:
    x = da.arange(24, chunks=6)
    y = x * 2
    g = graph_from_dask([y.sum(), y.max()])
    producers = [n for n in g.nodes if n.function == "mul"]
    assert len(producers) == 4
    assert all(len(g.downstream(n.id)) == 2 for n in producers)


def test_mixed_kinds_come_back_in_their_places() -> None:
    """`dask.compute(x.sum(), d, x.mean())` returns d last in Dask 2026.8; planflow does not."""
    x = da.arange(10, chunks=5)
    d = programs.delayed_tree(2)
    assert inline(graph_from_dask([x.sum(), d, x.mean()])) == [45, 1, 4.5]


def _fingerprints() -> dict[str, Any]:
    out = {}
    for name, build in programs.PROGRAMS.items():
        g = graph_from_dask(build())
        out[name] = [g.fingerprint(), [n.id for n in g.nodes]]
    return out


def test_ids_and_function_keys_are_the_same_in_every_process() -> None:
    """Tokens and dict order change with the hash seed; the graph (ids, function keys,
    edges: its fingerprint) must not."""
    script = ("import json, warnings; warnings.simplefilter('ignore');"
              "from tests.planner.test_dask_graph import _fingerprints;"
              "print(json.dumps(_fingerprints()))")
    seen = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, text=True,
                             capture_output=True, check=True)
        seen.append(json.loads(res.stdout))
    assert seen[0] == seen[1] == seen[2]


def test_function_keys_follow_the_callable_not_the_token() -> None:
    def build(offset: float, fn: Any) -> TaskGraph:
        x = da.arange(8, chunks=4) + offset
        return graph_from_dask(x.map_blocks(fn).sum())

    first = build(1.0, np.sqrt)
    other_data = build(2.0, np.sqrt)  # new tokens everywhere, same program
    other_code = build(1.0, np.exp)
    keys = {n.id: n.function_key for n in first.nodes}
    assert keys == {n.id: n.function_key for n in other_data.nodes}
    changed = {t for t, k in keys.items() if other_code.node(t).function_key != k}
    assert changed and all(t.startswith(("sqrt", "exp", "sum")) or "sum" in t for t in changed)
    assert all(k.startswith("dask:") for k in keys.values())


def flaky(v: int) -> int:
    return v + 1


def double(v: int) -> int:
    return v * 2


def test_retries_annotations_become_task_retries() -> None:
    with dask.annotate(retries=2):
        first = dask.delayed(flaky)(1)
    g = graph_from_dask(dask.delayed(double)(first))
    assert g.node("flaky-0").options.retries == 2
    assert g.node("double-0").options.retries == 0


def test_a_workflow_returning_collections_loads_with_parameters(tmp_path: Path) -> None:
    module = tmp_path / "arrays.py"
    module.write_text(textwrap.dedent("""
        import dask.array as da
        from planflow import workflow

        @workflow
        def squares(n: int = 8, chunk: int = 2):
            x = da.arange(n, chunks=chunk)
            return {"squares": x ** 2, "total": (x ** 2).sum()}
    """))
    g = load_graph(f"{module}:squares", {"n": "12", "chunk": "3"})
    assert g.workflow == "squares" and g.params == {"n": 12, "chunk": 3}
    result = inline(g)
    assert result["total"] == sum(i * i for i in range(12))
    np.testing.assert_array_equal(result["squares"], np.arange(12) ** 2)


def test_compile_and_simulate_take_collections() -> None:
    x = da.arange(64, chunks=8)
    plan = planflow.compile((x * 2).sum(split_every=2), platform="local")
    assert len(plan.graph) == len(graph_from_dask((x * 2).sum(split_every=2)))
    assert plan.summary.makespan_s > 0
    report = planflow.simulate(plan, all_memory_mb=512)
    assert report.scenario.makespan_s > 0
    named = planflow.from_dask(x.sum(), name="my_sum")
    assert named.workflow == "my_sum"
    with pytest.raises(UsageError, match="parameters"):
        planflow.compile(x.sum(), {"n": "3"})


@st.composite
def delayed_dags(draw: Any) -> tuple[list[list[int]], list[str]]:
    """Task i picks parents among tasks < i and passes them flat, in a list or in a dict."""
    n = draw(st.integers(1, 30))
    parents = [sorted(set(draw(st.lists(st.integers(0, i - 1), max_size=4)))) if i else []
               for i in range(n)]
    shapes = [draw(st.sampled_from(["flat", "list", "dict"])) for _ in range(n)]
    return parents, shapes


def _node(*args: Any, **kwargs: Any) -> int:
    def total(v: Any) -> int:
        if isinstance(v, int):
            return v
        return sum(total(x) for x in (v.values() if isinstance(v, dict) else v))
    return 1 + total(list(args)) + total(kwargs)


@settings(max_examples=40, deadline=None)
@given(delayed_dags())
def test_any_delayed_dag_keeps_its_edges_and_result(dag: tuple[list[list[int]],
                                                               list[str]]) -> None:
    parents, shapes = dag
    node = dask.delayed(_node, pure=False)
    made: list[Any] = []
    for ps, shape in zip(parents, shapes, strict=True):
        refs = [made[p] for p in ps]
        made.append(node(*refs) if shape == "flat" else
                    node(refs) if shape == "list" else node(deps={str(i): r for i, r in
                                                                 enumerate(refs)}))
    g = graph_from_dask(made[-1])
    want = dask.compute(made[-1], scheduler="sync", optimize_graph=False)[0]
    assert inline(g) == want
    reachable = len(g.nodes)
    assert reachable <= len(parents)
    for n in g.nodes:
        assert set(n.upstream) <= {m.id for m in g.nodes[:g.index(n.id)]}


def test_ten_thousand_tasks_compile_and_run_inline() -> None:
    leaves = da.arange(10_000 * 4, chunks=4, dtype=float)
    total = (leaves * 2).sum(split_every=16)
    plan = planflow.compile(total, platform="local")
    assert len(plan.graph) > 10_000
    assert planflow.run(plan, inline=True).result == pytest.approx(2 * sum(range(40_000)))


# -- what cannot be converted -------------------------------------------------------------

def test_no_collection_or_an_unknown_target_is_a_clear_error() -> None:
    with pytest.raises(DaskGraphError, match="no Dask collection"):
        graph_from_dask([1, 2])
    with pytest.raises(UsageError, match="cannot compile a object"):
        planflow.compile(object())


def test_a_collection_inside_a_set_is_refused() -> None:
    d = dask.delayed(int)(1)
    with pytest.raises(DaskGraphError, match="inside a set"):
        graph_from_dask({"values": [1, {d}]})


def test_mixing_planflow_tasks_and_collections_is_refused() -> None:
    @task
    def one() -> int:
        return 1

    @workflow
    def mixed() -> Any:
        return [one(), dask.delayed(int)(2)]

    with pytest.raises(DaskGraphError, match="both planflow task references"):
        planflow.compile(mixed)


def test_unpicklable_arguments_and_async_functions_are_refused() -> None:
    def hold(v: int, lock: Any) -> int:
        return v

    with pytest.raises(DaskGraphError, match=r"Dask task 'hold-0'.*type lock cannot be "
                                             r"serialized"):
        graph_from_dask(dask.delayed(hold)(1, threading.Lock()))

    async def fetch(v: int) -> int:
        return v

    with pytest.raises(DaskGraphError, match="async function"):
        graph_from_dask(dask.delayed(fetch)(1))


def test_an_old_dask_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask, "__version__", "2024.12.1")
    with pytest.raises(UsageError, match=r"dask >= 2025.4"):
        graph_from_dask(dask.delayed(int)(1))


class Custom:
    """A collection of one's own, speaking Dask's collection protocol."""

    def __init__(self, value: int, optimize: Any = None) -> None:
        self.value = value
        if optimize is not None:
            self.__dask_optimize__ = optimize

    def __dask_graph__(self) -> dict[str, Any]:
        return {"custom-base": self.value, "custom-top": (double, "custom-base")}

    def __dask_keys__(self) -> list[str]:
        return ["custom-top"]

    def __dask_postcompute__(self) -> Any:
        return programs.first, ()

    def __dask_tokenize__(self) -> Any:
        return ("custom", self.value)

    @staticmethod
    def __dask_optimize__(dsk: Any, keys: Any, **kwargs: Any) -> Any:
        return dsk

    __dask_scheduler__ = staticmethod(dask.threaded.get)


def test_a_collection_of_ones_own_with_tuple_tasks_converts() -> None:
    g = graph_from_dask(Custom(20))
    assert inline(g) == 40 and len(g) == 3  # data, the tuple task, the finalize task


def test_dask_errors_while_optimising_name_the_output() -> None:
    def broken(dsk: Any, keys: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no graph today")

    with pytest.raises(WorkflowDefinitionError, match="Dask could not optimise the Dask "
                                                      "output: RuntimeError: no graph today"):
        graph_from_dask(Custom(1, optimize=broken))


@pytest.fixture()
def dask_client() -> Any:
    """A distributed client of this test only: while one is active Dask builds other graphs
    (P2P rechunks and shuffles), which must not leak into other tests."""
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                            dashboard_address=None) as client:
        yield client


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def add(self) -> int:
        self.n += 1
        return self.n


def test_distributed_futures_persisted_collections_and_actors_are_refused(
        dask_client: Any) -> None:
    future = dask_client.submit(lambda: 3)
    with pytest.raises(DaskGraphError, match="distributed Future"):
        graph_from_dask({"f": future})
    with pytest.raises(DaskGraphError, match="not in the graph"):
        graph_from_dask(dask.delayed(lambda v: v + 1)(future))
    persisted = dask_client.persist(da.arange(4, chunks=2))
    with pytest.raises(DaskGraphError, match="persist"):
        graph_from_dask(persisted.sum())
    actor = dask_client.submit(Counter, actor=True).result()
    with pytest.raises(DaskGraphError, match=r"not in the graph.*actor"):
        graph_from_dask(dask.delayed(lambda a: a.add())(actor))


def test_p2p_shuffles_are_refused_with_the_setting_that_avoids_them() -> None:
    pytest.importorskip("distributed")
    import dask.dataframe as dd
    import pandas as pd

    df = dd.from_pandas(pd.DataFrame({"k": np.arange(40) % 4, "v": np.arange(40)}),
                        npartitions=4)
    with pytest.raises(DaskGraphError, match=r"P2PBarrierTask.*dataframe.shuffle.method"):
        graph_from_dask(df.shuffle("k", shuffle_method="p2p"))
    with dask.config.set({"dataframe.shuffle.method": "tasks"}):
        shuffled = df.shuffle("k")
        result = inline(graph_from_dask(shuffled))
    assert sorted(result.v) == list(range(40))
