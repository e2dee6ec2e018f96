"""Every example in examples/ gives the inline executor's result on worker processes, with one
worker per task (WUKONG's placement), with clustered placements, and as the planner compiles it
for a host whose workers share 2 CPUs (lanes and packed workers, whose tasks are not a path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from planner.compiler import compile_graph
from planner.loader import load_graph
from runtime.client import run_plan
from runtime.inline import run_inline
from runtime.local import LocalLauncher
from simulator import load_platform
from tests.runtime import plans

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SMALL: dict[str, dict[str, str]] = {
    "dask_stats.py": {"rows": "2000", "cols": "4", "chunk": "500"},
    "dynamic_wordcount.py": {"words": "700", "chunk_words": "100"},
    "image_tiles.py": {"size": "32", "tiles": "2"},
    "matmul.py": {"size": "32", "blocks": "2"},
    "numpy_requirements.py": {"n": "1000"},
    "nested_args.py": {"groups": "2", "per_group": "3"},
    "tree_reduction.py": {"n": "16"},
    "wordcount.py": {"words": "500", "chunks": "4"},
    "numpy_pipeline.py": {"chunks": "5", "side": "64"},
    "cpu_fanout.py": {"width": "3", "steps": "2000"},
    "io_fanout.py": {"width": "3", "delay_s": "0.01"},
}
"""Parameters keeping each example small; an example missing here runs with its defaults."""


def same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(SMALL)


def placed(graph: Any, placement: str) -> Any:
    if placement == "per-task":
        return plans.per_task(graph)
    if placement == "two-workers":
        return plans.round_robin(graph, 2)
    return compile_graph(graph, platform=load_platform("local").with_overrides(host_cpus=2.0))


@pytest.mark.parametrize("placement", ["per-task", "two-workers", "compiled-host"])
@pytest.mark.parametrize("example", sorted(SMALL))
def test_example_equals_inline(example: str, placement: str, redis_url: str,
                               local_launcher: LocalLauncher) -> None:
    g = load_graph(str(EXAMPLES / example), SMALL[example])
    plan = placed(g, placement)
    result = run_plan(plan, redis_url=redis_url, namespace=local_launcher.keys.namespace,
                      launcher=local_launcher, timeout_s=120.0)
    assert same(result.result, run_inline(plan).result)
