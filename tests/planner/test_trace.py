"""Tracing: argument shapes become edges with slot paths; ids are deterministic; bad programs
fail with messages that name the task and the argument."""

from __future__ import annotations

import threading
from collections import namedtuple

import pytest

from planflow import task, workflow
from planner.compiler import compile_graph
from planner.errors import WorkflowDefinitionError
from planner.loader import trace_workflow
from planner.trace import TaskRef
from runtime.inline import run_inline
from tests.planner.builders import add, diamond, inc, total

Pair = namedtuple("Pair", "left right")


@task
def echo(*args, **kwargs):
    return args, kwargs


def _slots(graph, task_id):
    return sorted(graph.node(task_id).slots, key=repr)


def test_diamond_ids_edges_and_order():
    g = trace_workflow(diamond)
    assert g.topological_order() == ("inc-0", "inc-1", "inc-2", "add-0")
    assert g.upstream("add-0") == ("inc-1", "inc-2")
    assert g.downstream("inc-0") == ("inc-1", "inc-2")
    assert g.roots() == ("inc-0",) and g.sink == "add-0"
    assert _slots(g, "add-0") == [("inc-1", ("args", 0)), ("inc-2", ("args", 1))]


@pytest.mark.parametrize(
    ("make_args", "expected_slot"),
    [
        (lambda r: ((r,), {}), ("args", 0)),
        (lambda r: (([1, [2, r]],), {}), ("args", 0, 1, 1)),
        (lambda r: (((0, r),), {}), ("args", 0, 1)),
        (lambda r: (({"a": {"b": [r]}},), {}), ("args", 0, "a", "b", 0)),
        (lambda r: ((), {"k": r}), ("kwargs", "k")),
        (lambda r: ((), {"k": [{"x": (r,)}]}), ("kwargs", "k", 0, "x", 0)),
        (lambda r: ((Pair(1, r),), {}), ("args", 0, 1)),
    ],
)
def test_every_argument_shape_is_an_edge(make_args, expected_slot):
    @workflow
    def wf():
        args, kwargs = make_args(inc(1))
        return echo(*args, **kwargs)

    g = trace_workflow(wf)
    assert g.node("echo-0").slots == (("inc-0", expected_slot),)
    result = run_inline(compile_graph(g)).result
    args, kwargs = make_args(2)
    assert result == (args, kwargs)


def test_nested_structures_resolve_to_values_and_keep_types():
    @workflow
    def wf():
        a, b = inc(1), inc(10)
        return echo({"xs": [a, (b, a)], "p": Pair(a, 5)}, k={"deep": [[b]]})

    result = run_inline(compile_graph(trace_workflow(wf))).result
    (arg,), kwargs = result
    assert arg == {"xs": [2, (11, 2)], "p": Pair(2, 5)}
    assert isinstance(arg["p"], Pair)
    assert kwargs == {"k": {"deep": [[11]]}}


def test_ids_are_deterministic_and_count_per_function():
    first = trace_workflow(diamond).topological_order()
    second = trace_workflow(diamond).topological_order()
    assert first == second == ("inc-0", "inc-1", "inc-2", "add-0")


def test_ids_do_not_leak_between_threads():
    out: dict[int, tuple[str, ...]] = {}

    def trace(i: int) -> None:
        out[i] = trace_workflow(diamond).topological_order()

    threads = [threading.Thread(target=trace, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(out.values()) == {("inc-0", "inc-1", "inc-2", "add-0")}


def test_task_function_stays_unit_testable():
    assert inc.fn(1) == 2
    assert isinstance(inc(1), TaskRef)  # calling the task is lazy, even outside a workflow


def test_multiple_outputs_get_one_collecting_sink():
    @workflow
    def wf():
        a = inc(1)
        return {"a": a, "both": [a, add(a, 1)]}

    g = trace_workflow(wf)
    assert g.sink == "_outputs-0"
    assert set(g.upstream("_outputs-0")) == {"inc-0", "add-0"}
    assert run_inline(compile_graph(g)).result == {"a": 2, "both": [2, 3]}


def test_tasks_not_leading_to_the_output_are_dropped():
    @workflow
    def wf():
        inc(100)  # result unused
        return inc(1)

    g = trace_workflow(wf)
    assert g.topological_order() == ("inc-1",)
    assert g.dropped == ("inc-0",)


# -- errors --------------------------------------------------------------------------------

def _error(wf) -> str:
    with pytest.raises(WorkflowDefinitionError) as info:
        trace_workflow(wf)
    return str(info.value)


def test_reference_inside_a_set_is_rejected():
    @workflow
    def wf():
        return total({inc(1), 2})

    msg = _error(wf)
    assert "task 'total-0': argument 'xs' is a set containing a task reference; use a list" in msg


def test_unpicklable_constant_is_rejected_naming_task_and_argument():
    @workflow
    def wf():
        return add(threading.Lock(), 1)

    msg = _error(wf)
    assert "task 'add-0': argument 'x' cannot be serialized" in msg


def test_reference_hidden_in_an_object_is_rejected():
    class Box:
        def __init__(self, v):
            self.v = v

    @workflow
    def wf():
        return total(Box(inc(1)))

    assert "hides task reference 'inc-0' inside a Box" in _error(wf)


def test_reference_as_dict_key_is_rejected():
    @workflow
    def wf():
        return total({inc(1): 1})

    assert "as a dict key" in _error(wf)


def test_workflow_returning_no_reference():
    @workflow
    def wf():
        inc(1)
        return 5

    assert "returns no task reference" in _error(wf)


def test_reference_from_another_workflow_or_outside():
    outside = inc(1)

    @workflow
    def wf():
        return inc(outside)

    assert "reference from another workflow" in _error(wf)


def test_call_that_does_not_fit_the_signature():
    @workflow
    def wf():
        return add(1, 2, 3)

    assert "task 'add-0':" in _error(wf)


def test_branching_on_a_reference_is_explained():
    @workflow
    def wf():
        a = inc(1)
        if a:
            return a
        return inc(2)

    assert "cannot be used in `if`/`while`" in _error(wf)


def test_unknown_task_option():
    with pytest.raises(WorkflowDefinitionError, match="unknown option"):
        task(retriez=3)(lambda: 1)
