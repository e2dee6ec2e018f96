"""Small named workflow builders shared by planner tests (each draws its DAG)."""

from __future__ import annotations

from planflow import task, workflow


@task
def inc(x: int) -> int:
    return x + 1


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@workflow
def diamond(x: int = 1):
    """
        inc-0
        /   \\
     inc-1  inc-2
        \\   /
        add-0
    """
    a = inc(x)
    return add(inc(a), inc(a))
