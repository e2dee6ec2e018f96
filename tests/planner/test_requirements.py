"""Workflow requirements at compile time: declared by the decorator or a requirements.txt,
pinned to what is installed here, and a clear compile-time error for what is not."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from planner.compiler import CompileOptions, compile_graph
from planner.errors import WorkflowDefinitionError
from planner.loader import load_graph
from planner.plan import load_plan
from planner.requirements import RequirementError, pin
from planner.trace import workflow

MODULE = """
from planflow import task, workflow

@task
def one() -> int:
    return 1

@workflow(requirements={listed!r})
def needs():
    return one()
"""


def module(tmp_path: Path, listed: list[str], file_lines: str | None = None) -> str:
    path = tmp_path / "wf.py"
    path.write_text(MODULE.format(listed=listed))
    if file_lines is not None:
        (tmp_path / "requirements.txt").write_text(file_lines)
    return str(path)


def test_the_decorator_and_the_file_are_pinned_into_the_plan(tmp_path: Path) -> None:
    path = module(tmp_path, ["numpy>=1.20"], "# tasks use these\ncloudpickle  # pickling\n\n")
    plan = compile_graph(load_graph(path, {}), CompileOptions(platform="local"))
    assert plan.requirements == (
        f"cloudpickle=={metadata.version('cloudpickle')}",
        f"numpy=={metadata.version('numpy')}",
    )
    assert load_plan(plan.save(tmp_path / "n.plan")).requirements == plan.requirements
    assert plan.to_json()["requirements"] == list(plan.requirements)


@pytest.mark.parametrize(
    ("listed", "message"),
    [
        (["no-such-package-xyz"], "package 'no-such-package-xyz' is not installed here"),
        (["numpy<1"], "which '<1' excludes"),
        (["numpy>>1"], "is not valid"),
    ],
)
def test_what_cannot_be_pinned_fails_the_compile_naming_it(
    tmp_path: Path, listed: list[str], message: str
) -> None:
    graph = load_graph(module(tmp_path, listed), {})
    with pytest.raises(RequirementError, match=message):
        compile_graph(graph, CompileOptions(platform="local"))


def test_pip_options_and_markers(tmp_path: Path) -> None:
    with pytest.raises(RequirementError, match="pip options are not supported"):
        load_graph(module(tmp_path, [], "-r other.txt\n"), {})
    assert pin(['numpy; sys_platform == "nonexistent"'], "wf") == ()


def test_requirements_must_be_a_list_of_strings() -> None:
    with pytest.raises(WorkflowDefinitionError, match="a list of strings"):
        workflow(requirements="numpy")(lambda: None)
