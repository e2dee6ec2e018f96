"""The CLI as a user meets it: compile, show, run --inline with --json, and clear errors
(exit 2, message on stderr naming the file/task/parameter, no traceback)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planflow.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# (example, parameters, expected result as JSON)
CASES = [
    ("tree_reduction", ["n=16"], 120),
    ("wordcount", ["words=2000", "chunks=4", "top=2"], None),
    ("matmul", ["size=64", "blocks=2"], None),
    ("image_tiles", ["size=64", "tiles=2"], {"height": 64, "width": 64}),
    ("nested_args", ["groups=2", "per_group=2"], None),
]


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def direct_result(name: str, params: list[str]):
    """The workflow's answer computed by calling the plain functions (no planflow executor)."""
    from planner.loader import find_workflow, load_module, trace_workflow
    from planner.params import parse_assignments

    path = EXAMPLES / f"{name}.py"
    wf = find_workflow(load_module(path), path, None)
    graph = trace_workflow(wf, parse_assignments(params))
    results = {}
    for node in graph.nodes:
        results[node.id] = graph.code[node.id].call(results)
    return results[graph.sink]


@pytest.mark.parametrize(("name", "params", "expected"), CASES, ids=[c[0] for c in CASES])
def test_compile_show_run_inline(runner, tmp_path, name, params, expected):
    plan = tmp_path / f"{name}.plan"
    p_args = [a for p in params for a in ("-p", p)]
    code, out, err = invoke(runner, "compile", str(EXAMPLES / f"{name}.py"), *p_args,
                            "-o", str(plan), "--json")
    assert code == 0, err
    compiled = json.loads(out)
    for key in ("workflow", "tasks", "workers", "makespan_s", "cost_usd", "gb_s",
                "critical_path", "strategy"):
        assert key in compiled
    assert compiled["workflow"] == name

    code, out, err = invoke(runner, "show", str(plan), "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert [t["id"] for t in shown["tasks"]] == [t["id"] for t in compiled["tasks"]]
    for t in shown["tasks"]:
        assert {"id", "function", "memory_mb", "worker"} <= set(t)

    code, out, err = invoke(runner, "run", str(plan), "--inline", "--json")
    assert code == 0, err
    ran = json.loads(out)
    assert ran["workflow"] == name and ran["dag_id"].startswith("dag-")
    assert ran["observed_makespan_s"] >= 0 and "makespan_s" in ran
    want = json.loads(json.dumps(direct_result(name, params)))
    assert ran["result"] == want
    if isinstance(expected, dict):
        assert {k: ran["result"][k] for k in expected} == expected
    elif expected is not None:
        assert ran["result"] == expected


def test_run_module_directly_with_params(runner):
    code, out, err = invoke(runner, "run", str(EXAMPLES / "tree_reduction.py"), "-p", "n=10",
                            "--inline", "--json")
    assert code == 0, err
    assert json.loads(out)["result"] == 45


def test_human_output_of_run(runner):
    code, out, _ = invoke(runner, "run", str(EXAMPLES / "tree_reduction.py"), "-p", "n=4",
                          "--inline")
    assert code == 0 and "result: 6" in out


WORKFLOWS = {
    "two.py": """
        from planflow import task, workflow
        @task
        def f(x): return x
        @workflow
        def a(): return f(1)
        @workflow
        def b(): return f(2)
    """,
    "none.py": "x = 1\n",
    "broken.py": "import not_a_module_anywhere\n",
    "setref.py": """
        from planflow import task, workflow
        @task
        def f(x): return x
        @workflow
        def w(): return f({f(1)})
    """,
}


@pytest.fixture()
def modules(tmp_path: Path) -> Path:
    for name, src in WORKFLOWS.items():
        (tmp_path / name).write_text(textwrap.dedent(src))
    return tmp_path


@pytest.mark.parametrize(("args", "message"), [
    (["compile", "{d}/missing.py"], "no such file"),
    (["compile", "{d}/broken.py"], "importing {d}/broken.py failed: ModuleNotFoundError"),
    (["compile", "{d}/none.py"], "defines no @workflow"),
    (["compile", "{d}/two.py"], "defines several workflows (a, b); pick one"),
    (["compile", "{d}/two.py:c"], "has no workflow 'c'"),
    (["compile", "{d}/setref.py"], "task 'f-1': argument 'x' is a set containing a task reference"),
    (["compile", "{ex}/tree_reduction.py", "-p", "m=3"], "has no parameter 'm'"),
    (["compile", "{ex}/tree_reduction.py", "-p", "n=lots"], "parameter 'n' expects int"),
    (["show", "{d}/none.py"], "not a plan file"),
    (["run", "{d}/nothing.plan", "--inline"], "no such plan file"),
])
def test_bad_input_exits_2_with_a_clear_message(runner, modules, args, message):
    args = [a.format(d=modules, ex=EXAMPLES) for a in args]
    code, out, err = invoke(runner, *args)
    assert code == 2
    assert out == ""
    assert message.format(d=modules) in err
    assert "Traceback" not in err


def test_compile_picks_one_of_several_workflows(runner, modules, tmp_path):
    code, _, err = invoke(runner, "compile", f"{modules}/two.py:b", "-o",
                            str(tmp_path / "b.plan"), "--json")
    assert code == 0, err
    code, out, err = invoke(runner, "run", str(tmp_path / "b.plan"), "--inline", "--json")
    assert json.loads(out)["result"] == 2


def test_failing_task_exits_1_naming_it(runner, tmp_path):
    (tmp_path / "fail.py").write_text(textwrap.dedent("""
        from planflow import task, workflow
        @task
        def boom(x): raise ValueError(f"bad {x}")
        @workflow
        def w(): return boom(3)
    """))
    code, _, err = invoke(runner, "run", str(tmp_path / "fail.py"), "--inline")
    assert code == 1
    assert "task 'boom-0' (boom) failed: ValueError: bad 3" in err
    assert "Traceback" not in err
