"""Vectorisation for `MetadataAccess`: tasks grouped by function, per-function parameters as
arrays gathered onto tasks, and the per-task inputs checked and defaulted.

Predictions for n tasks of u functions are computed once per function and gathered onto tasks
with the index array `group_tasks` returns, so a 100,000-task graph of ten functions costs ten
model evaluations and a handful of numpy operations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from metadata.models import CPU_DECIMALS, F64, DurationModel
from metadata.priors import DEFAULT_PARALLELISM, NO_PRIOR, TaskPrior


@dataclass(frozen=True)
class FittedTable:
    """Per-unique-function duration parameters as arrays, gathered onto tasks with `inv`."""

    has: NDArray[np.bool_]
    learned: NDArray[np.bool_]
    fixed: F64
    per_byte: F64
    serial: F64
    cap: F64
    ref: F64
    sigma: F64
    observed: NDArray[np.bool_]  # [functions, configs]

    @classmethod
    def build(cls, models: Sequence[DurationModel | None], cfg: F64) -> FittedTable:
        rounded = np.round(cfg, CPU_DECIMALS)

        def col(attr: str, default: float) -> F64:
            return np.array([getattr(m, attr) if m else default for m in models], dtype=float)

        observed = np.zeros((len(models), len(cfg)), dtype=bool)
        for i, m in enumerate(models):
            if m is not None:
                observed[i] = np.isin(rounded, m.observed_cpus)
        return cls(
            has=np.array([m is not None for m in models], dtype=bool),
            learned=np.array([bool(m and m.shape_learned) for m in models], dtype=bool),
            fixed=col("fixed_s", 0.0),
            per_byte=col("per_byte_s", 0.0),
            serial=col("serial", 0.0),
            cap=col("cap", 1.0),
            ref=col("ref_cpus", 1.0),
            sigma=col("sigma", 0.0),
            observed=observed,
        )


def group_tasks(function_keys: Sequence[str]) -> tuple[list[str], NDArray[np.intp]]:
    """(unique keys in first-seen order, index of each task's key in it)."""
    index: dict[str, int] = {}
    inv = np.fromiter(
        (index.setdefault(k, len(index)) for k in function_keys),
        dtype=np.intp,
        count=len(function_keys),
    )
    return list(index), inv


def task_vector(values: ArrayLike, n: int, name: str) -> F64:
    arr = np.asarray(values, dtype=float)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have one value per task ({n}), got shape {arr.shape}")
    return arr


def task_priors(priors: Sequence[TaskPrior] | None, n: int) -> Sequence[TaskPrior]:
    if priors is None:
        return [NO_PRIOR] * n
    if len(priors) != n:
        raise ValueError(f"priors must have one entry per task ({n}), got {len(priors)}")
    return priors


def prior_arrays(priors: Sequence[TaskPrior] | None, n: int) -> tuple[F64, F64]:
    """(expected_s with NaN where absent, parallelism with the default filled in)."""
    if priors is None:
        return np.full(n, math.nan), np.full(n, DEFAULT_PARALLELISM)
    items = task_priors(priors, n)
    expected = np.array(
        [math.nan if p.expected_s is None else p.expected_s for p in items], dtype=float
    )
    par = np.array(
        [DEFAULT_PARALLELISM if p.parallelism is None else p.parallelism for p in items],
        dtype=float,
    )
    return expected, np.maximum(par, 1e-3)
