"""No-op workflow shapes for the scale benchmark (`benchmarks/scale.py`); every task's work is
negligible, so a run's time is the executor's overhead. Each takes `tasks`, the approximate
number of tasks, and draws its DAG below.

    fan_in:   src-0..src-(n-1) -> gather-0            (n + 1 tasks)
    fan_out:  root-0 -> leaf-0..leaf-(n-1) -> gather-0 (n + 2 tasks)
    tree:     n/2 leaves, pairwise sums to one root    (about n tasks)
    chains:   n/4 chains of 4 steps -> gather-0        (n + 1 tasks)
"""

from __future__ import annotations

from planflow import task, workflow


@task
def src(i: int) -> int:
    return i


@task
def step(x: int) -> int:
    return x + 1


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def gather(xs: list[int]) -> int:
    return sum(xs)


@workflow
def fan_in(tasks: int = 100):
    return gather([src(i) for i in range(tasks)])


@workflow
def fan_out(tasks: int = 100):
    root = src(0)
    return gather([step(root) for _ in range(tasks)])


@workflow
def tree(tasks: int = 100):
    level = [src(i) for i in range(max(1, tasks // 2))]
    while len(level) > 1:
        pairs = zip(level[0::2], level[1::2], strict=False)
        level = [add(a, b) for a, b in pairs] + level[len(level) & ~1:]
    return level[0]


@workflow
def chains(tasks: int = 100):
    ends = []
    for i in range(max(1, tasks // 4)):
        x = src(i)
        for _ in range(3):
            x = step(x)
        ends.append(x)
    return gather(ends)


EXPECTED = {
    "fan_in": lambda n: sum(range(n)),
    "fan_out": lambda n: n,
    "tree": lambda n: sum(range(max(1, n // 2))),
    "chains": lambda n: sum(i + 3 for i in range(max(1, n // 4))),
}
"""The result each shape must return for `tasks` = n."""
