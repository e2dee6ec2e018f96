"""Drawn DAGs and a toy platform for planner tests, with plans worked out by hand.

The toy platform has two configurations, 1024 MB = 1 CPU and 2048 MB = 2 CPUs, a price of 1 per
GB-second, and nothing else: no start-up, no transfer time, no invocation price, no billing
rounding. Timelines are then sums of durations, and GB-s is memory x busy time.

Tasks follow the hint model: `duration(cpus) = e*max(0, 1-p) + e*p/min(cpus, max(p, 1))`, so a
task with p = 1 takes e at both configurations, and one with p = 2 takes e at 2048 MB and 2e at
1024 MB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from planner.graph import TaskCode, TaskGraph, TaskNode
from planner.trace import TaskOptions
from simulator import Platform, ResourceConfig


@dataclass(frozen=True)
class Spec:
    """One task of a drawn DAG: parents, expected seconds, parallelism, least memory."""

    parents: Sequence[str] = ()
    expected_s: float = 1.0
    parallelism: float = 1.0
    memory_mb: int | None = None
    output_bytes: float = 0.0


def toy_platform(**changes: object) -> Platform:
    """Two configurations (1024 MB/1 CPU, 2048 MB/2 CPUs), price 1 per GB-s, no overheads."""
    base = Platform(
        name="toy", configs=(ResourceConfig(1024, cpus=1.0), ResourceConfig(2048, cpus=2.0)),
        price_per_gb_s=1.0, price_per_invocation=0.0, cold_start_s=0.0, warm_start_s=0.0,
        keep_warm_s=0.0, storage_latency_s=0.0, storage_bandwidth_bps=1e18,
        concurrency_limit=1000, billing_granularity_s=0.0)
    return base.with_overrides(**changes) if changes else base


def _noop(*args: object) -> None:
    return None


def dag(name: str, specs: Mapping[str, Spec], rename: Mapping[str, str] | None = None
        ) -> TaskGraph:
    """A TaskGraph of `specs` (in the given order, which must be topological); `rename` maps
    drawn names to the ids used, to check that nothing leans on names."""
    ren = dict(rename or {})
    nodes = []
    for tid, s in specs.items():
        opts = TaskOptions(name=ren.get(tid, tid), expected_s=s.expected_s,
                           parallelism=s.parallelism, memory_mb=s.memory_mb,
                           output_bytes=s.output_bytes)
        nodes.append(TaskNode(ren.get(tid, tid), ren.get(tid, tid), f"test.{ren.get(tid, tid)}",
                              opts, tuple(ren.get(p, p) for p in s.parents)))
    return TaskGraph.create(name, nodes, {n.id: TaskCode(_noop) for n in nodes})


def reversed_names(specs: Mapping[str, Spec]) -> dict[str, str]:
    """A renaming that reverses the alphabetical order of the names."""
    names = sorted(specs)
    return {a: f"t{len(names) - i:02d}" for i, a in enumerate(names)}


def chain() -> dict[str, Spec]:
    """
    a -> b -> c        all p = 1, e = 2 s: no task gets slower at 1024 MB
    """
    return {"a": Spec((), 2.0), "b": Spec(("a",), 2.0), "c": Spec(("b",), 2.0)}


def diamond() -> dict[str, Spec]:
    """
          a            a, d: e = 1, p = 1
         / \\           b: e = 4, p = 2   (4 s at 2048 MB, 8 s at 1024 MB)  critical
        b   c          c: e = 1, p = 1.5 (1 s at 2048 MB, 1.5 s at 1024 MB), slack 3 s
         \\ /
          d
    """
    return {"a": Spec((), 1.0), "b": Spec(("a",), 4.0, 2.0), "c": Spec(("a",), 1.0, 1.5),
            "d": Spec(("b", "c"), 1.0)}


def fork() -> dict[str, Spec]:
    """
          r            r: e = 1, p = 1
        / | \\          x: e = 6, p = 2 (critical); y: e = 2, p = 2; z: e = 1, p = 2
       x  y  z         s: e = 1, p = 1; y and z each have 4-5 s of slack at 2048 MB,
        \\ | /          so each could take 1024 MB (4 s, 2 s)
          s
    """
    return {"r": Spec((), 1.0), "x": Spec(("r",), 6.0, 2.0), "y": Spec(("r",), 2.0, 2.0),
            "z": Spec(("r",), 1.0, 2.0), "s": Spec(("x", "y", "z"), 1.0)}
