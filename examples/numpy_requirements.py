"""A workflow with requirements: its tasks import numpy, so it says so.

`@workflow(requirements=[...])` (or a requirements.txt beside the module) is pinned at compile
time to what is installed here (`numpy==2.x.y` in the plan; a missing package fails the
compile, naming it). `planflow run` prepares one environment for that pinned set before any
worker starts and reports the time it took (`prepare_s`); the next run finds it cached.

    planflow run examples/numpy_requirements.py -p n=100000 --json   # prepare_s, environment
"""

from planflow import task, workflow


@task
def sample(n: int, seed: int) -> list[float]:
    import numpy as np

    return np.random.default_rng(seed).normal(size=n).tolist()


@task
def moments(xs: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(xs)
    return {"mean": round(float(a.mean()), 6), "std": round(float(a.std()), 6)}


@task
def interpreter() -> str:
    """Where the worker's Python lives: the prepared environment's directory."""
    import sys

    return sys.prefix


@workflow(requirements=["numpy>=1.26"])
def numpy_requirements(n: int = 10000, seed: int = 1):
    return {"moments": moments(sample(n, seed)), "prefix": interpreter()}
