"""A plan carries its platform: `run` takes keep-warm and configuration sizes from the plan and
never reads the platform file again, so a plan compiled for a TOML that is later changed or
deleted runs as compiled."""

from __future__ import annotations

from pathlib import Path

from planner.compiler import CompileOptions, compile_graph
from planner.loader import trace_workflow
from planner.plan import load_plan
from runtime.client import keep_warm_of, platform_sizes, run_plan
from tests.runtime import plans
from tests.runtime.workflows import tree

PLATFORM = 'extends = "local"\nname = "mine"\nkeep_warm_s = 7\nconfigs = [512, 1769]\n'


def test_run_ignores_a_changed_or_missing_platform_file(tmp_path: Path, redis_url: str,
                                                        namespace: str) -> None:
    toml = tmp_path / "mine.toml"
    toml.write_text(PLATFORM)
    graph = trace_workflow(tree, {"leaves": "4"})
    compiled = compile_graph(graph, CompileOptions(platform=str(toml)))
    path = compiled.save(tmp_path / "tree.plan")
    toml.write_text('extends = "lambda"\nkeep_warm_s = 1\nconfigs = [128]\n')  # changed
    plan = load_plan(path)
    assert keep_warm_of(plan) == 7.0
    assert [mb for mb, _ in platform_sizes(plan)] == [512, 1769]
    toml.unlink()  # and gone
    result = run_plan(load_plan(path), redis_url=redis_url, namespace=namespace,
                      launcher="thread", timeout_s=60)
    assert result.result == sum(range(1, 5))


def test_a_plan_built_by_hand_takes_the_built_in_it_names_else_the_defaults() -> None:
    from dataclasses import replace

    from runtime.pool import DEFAULT_KEEP_WARM_S
    from simulator import load_platform

    plan = plans.one_worker(trace_workflow(tree, {"leaves": "2"}))
    assert plan.platform_spec is None and plan.platform == "local"
    local = load_platform("local")
    assert keep_warm_of(plan) == local.keep_warm_s
    assert platform_sizes(plan) == tuple((c.memory_mb, c.cpus) for c in local.configs)
    nowhere = replace(plan, platform="nowhere")
    assert keep_warm_of(nowhere) == DEFAULT_KEEP_WARM_S and platform_sizes(nowhere) == ()
