"""Dask programs the tests run through planflow, and the comparison of their results.

Each builder returns what a user's workflow would return (a collection or a structure of
them), small enough for a test and shaped like the real thing: tree reductions with
`split_every`, a rechunk, an overlap, shared sub-expressions, a bag word count, a dataframe
groupby, a `dask.delayed` tree, a tall-skinny SVD, and a mixed structure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import dask.bag as db
import dask.dataframe as dd
import numpy as np
import pandas as pd


def array_reduction() -> Any:
    """((x + 1) ** 2).sum over 6x6 blocks, a tree of fan-in 2:

        block -> block -> ... (36) -> sum -> sum -> sum -> sum-aggregate
    """
    x = da.arange(36 * 25, dtype=float, chunks=25).reshape(30, 30).rechunk(5)
    return ((x + 1) ** 2).sum(split_every=2)


def array_rechunk() -> Any:
    """Row blocks to column blocks: every output block reads a piece of every input block."""
    x = da.arange(40 * 40, dtype=float).reshape(40, 40).rechunk((8, 40))
    return x.rechunk((40, 8)) * 3


def array_overlap() -> Any:
    """A 3-point stencil on 3x3 blocks with reflected boundaries (map_overlap: ghost cells)."""
    x = da.arange(15 * 15, dtype=float).reshape(15, 15).rechunk(5)

    def smooth(block: np.ndarray) -> np.ndarray:
        return (block + np.roll(block, 1, axis=0) + np.roll(block, -1, axis=0)) / 3

    return da.map_overlap(smooth, x, depth=1, boundary="reflect")


def shared_subexpressions() -> Any:
    """One expression feeding three outputs (its blocks are computed once):

        y = x * 2  ->  y.sum(), y.mean(axis=0), y.T @ y
    """
    x = da.arange(24 * 6, dtype=float).reshape(24, 6).rechunk((6, 6))
    y = x * 2
    return {"sum": y.sum(), "mean": y.mean(axis=0), "gram": y.T @ y}


def bag_wordcount() -> Any:
    """Word frequencies of generated lines in 5 partitions (split, flatten, frequencies)."""
    words = ["alpha", "beta", "gamma", "delta"]
    lines = [" ".join(words[(i * j) % 4] for j in range(7)) for i in range(60)]
    return db.from_sequence(lines, npartitions=5).str.split().flatten().frequencies()


def dataframe_groupby() -> Any:
    """A groupby over 6 partitions: per key the sum and mean of a derived column."""
    n = 600
    pdf = pd.DataFrame({"key": np.arange(n) % 7, "x": np.arange(n, dtype=float)})
    df = dd.from_pandas(pdf, npartitions=6)
    df = df.assign(y=df.x * 2 + 1)
    return df.groupby("key").y.agg(["sum", "mean"])


@dask.delayed
def _add(a: int, b: int) -> int:
    return a + b


@dask.delayed(pure=True)
def _leaf(i: int) -> int:
    return i * i


def delayed_tree(leaves: int = 16) -> Any:
    """A binary in-tree of `dask.delayed` additions over squared leaves."""
    level = [_leaf(i) for i in range(leaves)]
    while len(level) > 1:
        level = [_add(a, b) for a, b in zip(level[0::2], level[1::2], strict=True)]
    return level[0]


def tall_skinny_svd() -> Any:
    """`da.linalg.svd` of a 200 x 8 matrix in 5 row blocks (TSQR underneath)."""
    x = da.random.default_rng(7).standard_normal((200, 8), chunks=(40, 8))
    _, s, _ = da.linalg.svd(x)
    return s


def mixed() -> Any:
    """Collections of three kinds in one structure, with a constant beside them."""
    x = da.arange(12, chunks=4)
    return {"array": x.sum(), "delayed": [delayed_tree(4), "constant"],
            "bag": db.from_sequence(range(6), npartitions=2).map(lambda v: v + 1)}


def first(results: Any) -> Any:
    """A postcompute function: a collection of one key returns that key's value."""
    return results[0]


PROGRAMS: dict[str, Callable[[], Any]] = {
    f.__name__: f for f in (array_reduction, array_rechunk, array_overlap,
                            shared_subexpressions, bag_wordcount, dataframe_groupby,
                            delayed_tree, tall_skinny_svd, mixed)
}


def expected(output: Any) -> Any:
    """What the program computes, collection by collection with Dask's threaded scheduler
    (one `dask.compute` of mixed kinds returns them in the wrong order in Dask 2026.8)."""
    if dask.is_dask_collection(output):
        return dask.compute(output, scheduler="threads")[0]
    if isinstance(output, dict):
        return {k: expected(v) for k, v in output.items()}
    if isinstance(output, list | tuple):
        return type(output)(expected(v) for v in output)
    return output


def assert_same(got: Any, want: Any) -> None:
    """Equal values: arrays elementwise (floats to 1e-9), pandas objects exactly."""
    if isinstance(want, pd.DataFrame | pd.Series):
        assert type(got) is type(want)
        if isinstance(want, pd.DataFrame):
            pd.testing.assert_frame_equal(got, want)
        else:
            pd.testing.assert_series_equal(got, want)
    elif isinstance(want, np.ndarray | np.generic | float):
        np.testing.assert_allclose(got, want, rtol=1e-9)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys()
        for k in want:
            assert_same(got[k], want[k])
    elif isinstance(want, list | tuple):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_same(g, w)
    else:
        assert got == want
