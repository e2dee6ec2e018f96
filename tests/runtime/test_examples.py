"""Every example in examples/ gives the inline executor's result on worker processes, with one
worker per task (WUKONG's placement) and with clustered placements."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from planner.loader import load_graph
from runtime.client import run_plan
from runtime.inline import run_inline
from runtime.local import LocalLauncher
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


@pytest.mark.parametrize("placement", ["per-task", "two-workers"])
@pytest.mark.parametrize("example", sorted(SMALL))
def test_example_equals_inline(example: str, placement: str, redis_url: str,
                               local_launcher: LocalLauncher) -> None:
    g = load_graph(str(EXAMPLES / example), SMALL[example])
    plan = plans.per_task(g) if placement == "per-task" else plans.round_robin(g, 2)
    result = run_plan(plan, redis_url=redis_url, namespace=local_launcher.keys.namespace,
                      launcher=local_launcher, timeout_s=120.0)
    assert same(result.result, run_inline(plan).result)
