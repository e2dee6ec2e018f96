"""Synthetic task graphs for the planner benchmarks: WfCommons-like layered shapes.

`layered(n, seed)` builds n tasks in stages that alternate fan-outs (a task feeds several
parallel ones), pipelines (1->1 chains) and fan-ins (several tasks feed one merge), like the
scientific workflows WfCommons models (montage, epigenomics, genome). Durations are lognormal
around a per-stage mean, CPU parallelism between 0.1 and 2, outputs between 1 KB and 50 MB,
and one task in twenty needs more memory. Deterministic for a seed.
"""

from __future__ import annotations

import numpy as np

from planner.graph import TaskCode, TaskGraph, TaskNode
from planner.trace import TaskOptions

WIDTH_RANGE = (4, 64)
"""Parallel tasks per fan-out stage."""


def _noop(*args: object) -> None:
    return None


def layered(n: int, seed: int = 0) -> TaskGraph:
    """A layered DAG of exactly n tasks (the last one is the sink)."""
    rng = np.random.default_rng(seed)
    nodes: list[TaskNode] = []
    frontier: list[str] = []

    def add(fn: str, parents: list[str]) -> str:
        tid = f"{fn}-{len(nodes)}"
        mean = {"split": 2.0, "work": 20.0, "merge": 5.0, "step": 8.0}[fn]
        opts = TaskOptions(
            name=fn, expected_s=float(rng.lognormal(np.log(mean), 0.5)),
            parallelism=float(rng.uniform(0.1, 2.0)),
            output_bytes=float(10 ** rng.uniform(3, 7.7)),
            memory_mb=int(rng.choice([512, 1024, 3008])) if rng.random() < 0.05 else None)
        nodes.append(TaskNode(tid, fn, f"bench.{fn}", opts, tuple(parents)))
        return tid

    while len(nodes) < n - 1:
        room = n - 1 - len(nodes)
        root = add("split", frontier[-3:] if frontier else [])
        width = min(room - 1, int(rng.integers(*WIDTH_RANGE))) if room > 1 else 0
        level = [add("work", [root]) for _ in range(width)]
        while level and rng.random() < 0.5 and len(nodes) + len(level) < n - 1:
            level = [add("step", [t]) for t in level]
        if level and len(nodes) < n - 1:
            frontier.append(add("merge", level))
        else:
            frontier.append(root)
    nodes.append(TaskNode(f"sink-{len(nodes)}", "sink", "bench.sink",
                          TaskOptions(name="sink", expected_s=0.01), tuple(frontier[-8:])))
    leaves = _leaves(nodes)
    if leaves:
        last = nodes[-1]
        nodes[-1] = TaskNode(last.id, last.function, last.function_key, last.options,
                             tuple(dict.fromkeys((*last.upstream, *leaves))))
    code = {node.id: TaskCode(_noop) for node in nodes}
    return TaskGraph.create(f"layered-{n}", nodes, code)


def _leaves(nodes: list[TaskNode]) -> list[str]:
    used = {p for node in nodes for p in node.upstream}
    return [node.id for node in nodes[:-1] if node.id not in used]
