"""The plan document's writer: the spelled-out task and worker dicts hold exactly what
`dataclasses.asdict` would, and `plan.json` is the same JSON value as `json.dumps(indent=1)`."""

from __future__ import annotations

import json
from dataclasses import asdict, fields

from planner.compiler import compile_graph
from planner.loader import trace_workflow
from planner.plan import TaskPlan, WorkerPlan, _task_json, _worker_json, dumps_plan_json
from tests.planner.builders import diamond


def _asdict_lists(value: object) -> dict[str, object]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(value).items()}


def test_task_json_holds_every_field_but_the_id() -> None:
    t = TaskPlan("inc-0", 512, 0.5, "w0", 1.0, 2.0, 1.0, True, 0.25, ("delayed-io",),
                 ("cheaper",), "history")
    expected = _asdict_lists(t)
    del expected["task_id"]
    assert _task_json(t) == expected
    assert list(_task_json(t)) == [f.name for f in fields(TaskPlan)][1:]


def test_worker_json_holds_every_field() -> None:
    w = WorkerPlan("w0", 512, 0.5, ("inc-0", "inc-1"), 0.5, True, 0.1, 3.0, False)
    assert _worker_json(w) == _asdict_lists(w)
    assert list(_worker_json(w)) == [f.name for f in fields(WorkerPlan)]


def test_plan_json_is_the_indented_document() -> None:
    doc = compile_graph(trace_workflow(diamond)).to_json()
    text = dumps_plan_json(doc)
    assert json.loads(text) == json.loads(json.dumps(doc, indent=1))
    assert text.count("\n") > len(doc)  # one key per line, one task per line
    assert sum(1 for line in text.splitlines() if '"function_key"' in line) == len(doc["tasks"])
