"""The workloads of `wukong_suite.py`: WUKONG's Dask programs, scaled, and how to compare results.

WUKONG (SoCC'20) benchmarked Dask programs on AWS Lambda at the sizes in brackets; here each is
scaled to a 2-core / 24 GB machine shared with other work (`Scale.full`), or smaller still for a
smoke run (`Scale.quick`):

| name      | program                                              | WUKONG                    |
|-----------|------------------------------------------------------|---------------------------|
| tr        | tree reduction of 1,024 leaves (dask.delayed adds of  | 1,024 leaves              |
|           | numpy vectors)                                       |                           |
| tsqr      | `da.linalg.svd` (TSQR) of a tall-skinny matrix       | 200,000 x 1,000 / 10,000  |
| gemm      | `x @ y`, square, blocked                             | 10,000 x 10,000 / 1,000   |
| svdc      | `da.linalg.svd_compressed(k=10)`, square, blocked    | 10,000 x 10,000 / 1,000   |
| groupby   | dask.dataframe groupby-agg over partitions           | (not in WUKONG)           |
| wordcount | dask.bag split / flatten / frequencies               | (not in WUKONG)           |

Each builder returns a fresh collection (new tokens every call, as a user's program would) and
every engine computes exactly that collection. `same(a, b)` says whether two engines' results
agree: arrays to 1e-6 relative (SVD factors up to the sign of each singular vector, which
BLAS rounding may flip), frames exactly in shape and index and to 1e-9 in values, word counts
as multisets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import dask.bag as db
import dask.dataframe as dd
import numpy as np
import pandas as pd

SEED = 2020
"""Every random input is drawn from this seed (the same data for every engine)."""


@dataclass(frozen=True)
class Scale:
    tr_leaves: int
    tr_vector: int
    tsqr_rows: int
    tsqr_cols: int
    tsqr_chunk: int
    gemm_n: int
    gemm_chunk: int
    svdc_n: int
    svdc_chunk: int
    groupby_rows: int
    groupby_parts: int
    words_lines: int
    words_parts: int

    def describe(self) -> dict[str, str]:
        return {
            "tr": f"{self.tr_leaves} leaves of {self.tr_vector} floats",
            "tsqr": f"{self.tsqr_rows:,} x {self.tsqr_cols} in {self.tsqr_chunk:,}-row chunks",
            "gemm": f"{self.gemm_n:,}^2 in {self.gemm_chunk:,}^2 blocks",
            "svdc": f"{self.svdc_n:,}^2 in {self.svdc_chunk:,}^2 blocks, k=10",
            "groupby": f"{self.groupby_rows:,} rows in {self.groupby_parts} partitions",
            "wordcount": f"{self.words_lines:,} lines in {self.words_parts} partitions",
        }


FULL = Scale(tr_leaves=1024, tr_vector=1000, tsqr_rows=40_000, tsqr_cols=500,
             tsqr_chunk=2_000, gemm_n=4_000, gemm_chunk=1_000, svdc_n=4_000, svdc_chunk=1_000,
             groupby_rows=2_000_000, groupby_parts=20, words_lines=200_000, words_parts=20)
QUICK = Scale(tr_leaves=64, tr_vector=100, tsqr_rows=4_000, tsqr_cols=50, tsqr_chunk=500,
              gemm_n=800, gemm_chunk=200, svdc_n=800, svdc_chunk=200, groupby_rows=50_000,
              groupby_parts=5, words_lines=5_000, words_parts=5)


def _leaf(i: int, n: int) -> np.ndarray:
    return np.full(n, float(i))


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a + b


def tree_reduction(s: Scale) -> Any:
    leaf, add = dask.delayed(_leaf, pure=False), dask.delayed(_add, pure=False)
    level = [leaf(i, s.tr_vector) for i in range(s.tr_leaves)]
    while len(level) > 1:
        level = [add(a, b) for a, b in zip(level[0::2], level[1::2], strict=True)]
    return level[0]


def tsqr(s: Scale) -> Any:
    x = da.random.default_rng(SEED).standard_normal((s.tsqr_rows, s.tsqr_cols),
                                                    chunks=(s.tsqr_chunk, s.tsqr_cols))
    return da.linalg.svd(x)


def gemm(s: Scale) -> Any:
    rng = da.random.default_rng(SEED)
    x = rng.random((s.gemm_n, s.gemm_n), chunks=s.gemm_chunk)
    y = rng.random((s.gemm_n, s.gemm_n), chunks=s.gemm_chunk)
    return x @ y


def svd_compressed(s: Scale) -> Any:
    x = da.random.default_rng(SEED).random((s.svdc_n, s.svdc_n), chunks=s.svdc_chunk)
    return da.linalg.svd_compressed(x, k=10, seed=SEED)


def groupby(s: Scale) -> Any:
    rng = np.random.default_rng(SEED)
    pdf = pd.DataFrame({"key": rng.integers(0, 1000, s.groupby_rows),
                        "x": rng.random(s.groupby_rows), "y": rng.random(s.groupby_rows)})
    df = dd.from_pandas(pdf, npartitions=s.groupby_parts)
    return df.groupby("key").agg({"x": "mean", "y": "sum"})


_WORDS = ["serverless", "dask", "task", "graph", "lambda", "worker", "redis", "plan", "cost",
          "makespan", "cluster", "shuffle"]


def wordcount(s: Scale) -> Any:
    lines = [" ".join(_WORDS[(i * 7 + j * 3) % len(_WORDS)] for j in range(10))
             for i in range(s.words_lines)]
    return db.from_sequence(lines, npartitions=s.words_parts).str.split().flatten() \
        .frequencies()


WORKLOADS: dict[str, Callable[[Scale], Any]] = {
    "tr": tree_reduction, "tsqr": tsqr, "gemm": gemm, "svdc": svd_compressed,
    "groupby": groupby, "wordcount": wordcount,
}


def same(name: str, a: Any, b: Any) -> bool:
    """Whether two engines' results of workload `name` agree (module docstring)."""
    if name in ("tsqr", "svdc"):
        return all(np.allclose(np.abs(x), np.abs(y), rtol=1e-6, atol=1e-8)
                   for x, y in zip(a, b, strict=True))
    if name == "groupby":
        try:
            pd.testing.assert_frame_equal(a.sort_index(), b.sort_index(), rtol=1e-9)
        except AssertionError:
            return False
        return True
    if name == "wordcount":
        return sorted(a) == sorted(b)
    return bool(np.allclose(a, b, rtol=1e-6))


def difference(name: str, a: Any, b: Any) -> str:
    """What differs between two results that are not `same` (kept in the JSON row)."""
    try:
        if name == "groupby":
            x, y = a.sort_index(), b.sort_index()
            if x.shape != y.shape or not x.index.equals(y.index):
                return f"shape {x.shape} vs {y.shape}, same index: {x.index.equals(y.index)}"
            d = (x - y).abs()
            rows = int((d > 1e-9 * y.abs().max()).any(axis=1).sum())
            return f"{rows} of {len(y)} groups differ; largest |diff| {d.max().to_dict()}"
        if name == "wordcount":
            return f"{len(set(a) ^ set(b))} (word, count) pairs differ"
        parts = a if name in ("tsqr", "svdc") else [a]
        refs = b if name in ("tsqr", "svdc") else [b]
        return "; ".join(f"max |diff| {np.max(np.abs(np.abs(x) - np.abs(y))):.3g}"
                         for x, y in zip(parts, refs, strict=True))
    except Exception as err:  # a diagnostic must not fail the benchmark
        return f"cannot compare ({type(err).__name__}: {err})"
