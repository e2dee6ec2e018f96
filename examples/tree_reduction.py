"""Tree reduction: add numbers pairwise until one is left (a binary in-tree of `n - 1` adds).

    planflow run examples/tree_reduction.py -p n=64      # -> 2016
"""

from planflow import task, workflow


@task
def add(x: int, y: int) -> int:
    return x + y


@workflow
def tree_reduction(n: int = 64):
    level = list(range(n))
    if len(level) == 1:
        return add(level[0], 0)
    while len(level) > 1:
        nxt = [add(a, b) for a, b in zip(level[0::2], level[1::2], strict=False)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]
