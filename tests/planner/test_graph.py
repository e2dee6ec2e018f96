"""The IR: random DAGs built through the API have the right edges and a valid topological
order; explicit graphs are validated (unknown parent, cycle, duplicate id)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planflow import task, workflow
from planner.errors import GraphError
from planner.graph import TaskCode, TaskGraph, TaskNode
from planner.loader import trace_workflow
from planner.trace import TaskOptions


@task
def node(*parents: int) -> int:
    return 1 + sum(parents)


@st.composite
def random_dags(draw):
    """Each task i picks parents among tasks < i, nested in random container shapes."""
    n = draw(st.integers(1, 25))
    parents = [sorted(set(draw(st.lists(st.integers(0, i - 1), max_size=4)))) if i else []
               for i in range(n)]
    shapes = [draw(st.sampled_from(["flat", "list", "dict", "tuple"])) for _ in range(n)]
    return n, parents, shapes


def _build(n, parents, shapes):
    @task
    def combine(arg) -> int:
        def walk(v):
            if isinstance(v, int):
                return v
            if isinstance(v, dict):
                return sum(walk(x) for x in v.values())
            return sum(walk(x) for x in v)
        return 1 + walk(arg)

    @workflow
    def wf():
        refs = []
        for i in range(n):
            ps = [refs[p] for p in parents[i]]
            shape = shapes[i]
            if shape == "flat":
                refs.append(node(*ps))
            elif shape == "list":
                refs.append(combine([ps, []]))
            elif shape == "dict":
                refs.append(combine({f"k{j}": [p] for j, p in enumerate(ps)}))
            else:
                refs.append(combine(tuple((p, 0) for p in ps)))
        return refs

    return wf


@settings(max_examples=60, deadline=None)
@given(random_dags())
def test_random_dags_have_the_traced_edges_in_topological_order(dag):
    n, parents, shapes = dag
    g = trace_workflow(_build(n, parents, shapes))
    order = {tid: i for i, tid in enumerate(g.topological_order())}
    for src, dst in g.edges():
        assert order[src] < order[dst]
    assert g.sink == "_outputs-0"
    # every traced dependency is an edge, and nothing else is
    ids = [t for t in g.topological_order() if t != "_outputs-0"]
    by_call = sorted(ids, key=lambda t: (t.split("-")[0], int(t.split("-")[1])))
    assert len(by_call) == n
    assert sum(len(g.upstream(t)) for t in ids) == sum(len(p) for p in parents)
    for tid in ids:
        for parent in g.upstream(tid):
            assert tid in g.downstream(parent)
    assert len(g.nodes) == n + 1


def _node(tid, *ups):
    return TaskNode(tid, "f", "k", TaskOptions(name="f"), tuple(ups))


def _code(*ids):
    return {i: TaskCode(int) for i in ids}


def test_create_orders_nodes_topologically_and_keeps_a_valid_order():
    g = TaskGraph.create("w", [_node("c", "b"), _node("a"), _node("b", "a")], _code("a", "b", "c"))
    assert g.topological_order() == ("a", "b", "c")


def test_create_rejects_unknown_parent():
    with pytest.raises(GraphError, match="task 'b' depends on unknown task 'x'"):
        TaskGraph.create("w", [_node("b", "x")], _code("b"))


def test_create_rejects_cycles():
    with pytest.raises(GraphError, match="cycle"):
        TaskGraph.create("w", [_node("a", "b"), _node("b", "a"), _node("c")], _code("a", "b", "c"))


def test_create_rejects_duplicate_ids():
    with pytest.raises(GraphError, match="duplicate task id 'a'"):
        TaskGraph.create("w", [_node("a"), _node("a")], _code("a"))


def test_create_adds_a_collecting_sink_for_several_sinks():
    g = TaskGraph.create("w", [_node("a"), _node("b")], _code("a", "b"))
    assert g.sink == "_outputs-0"
    assert g.upstream(g.sink) == ("a", "b")


def test_networkx_view_matches():
    g = TaskGraph.create("w", [_node("a"), _node("b", "a"), _node("c", "a", "b")],
                         _code("a", "b", "c"))
    nxg = g.to_networkx()
    assert set(nxg.edges()) == {("a", "b"), ("a", "c"), ("b", "c")}
