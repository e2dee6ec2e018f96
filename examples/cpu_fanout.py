"""A pure-Python CPU-bound fan-out: `width` independent tasks that each run a tight Python loop
(no numpy, no I/O: the GIL is held throughout), then a reduce.

One process runs them one after another; on a machine with several cores the plan should run
them side by side, each in its own worker process.

    planflow run examples/cpu_fanout.py -p width=8 -p steps=2000000
"""

from planflow import task, workflow

MODULUS = 2_147_483_647
"""2^31 - 1: the Park-Miller generator's modulus."""

MULTIPLIER = 48_271
"""The Park-Miller (MINSTD) multiplier."""


@task
def churn(seed: int, steps: int) -> int:
    """`steps` rounds of the MINSTD generator from `seed`; the count of values below half."""
    x, below = seed % MODULUS or 1, 0
    half = MODULUS // 2
    for _ in range(steps):
        x = x * MULTIPLIER % MODULUS
        below += x < half
    return below


@task
def total(counts: list[int]) -> dict[str, int]:
    return {"tasks": len(counts), "below_half": sum(counts)}


@workflow
def cpu_fanout(width: int = 8, steps: int = 2_000_000):
    return total([churn(i + 1, steps) for i in range(width)])
