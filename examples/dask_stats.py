"""A Dask program, unchanged, compiled and run by planflow: column statistics of a random matrix.

    planflow run examples/dask_stats.py -p rows=40000
    planflow compile examples/dask_stats.py --platform local -o stats.plan
    planflow show stats.plan

The workflow function builds Dask collections and returns them, as it would hand them to
`dask.compute`; planflow compiles Dask's optimised graph (one task per block operation: `mean`,
`var`, block products of the Gram matrix, their tree sums) and returns numpy arrays in the same
dict. `dask.compute(column_stats.fn())` gives the same values.
"""

import dask.array as da

from planflow import workflow


@workflow
def column_stats(rows: int = 20_000, cols: int = 40, chunk: int = 5_000, seed: int = 42):
    """Per-column mean and standard deviation, and the covariance matrix, of `rows` x `cols`
    normal samples in row blocks of `chunk`."""
    x = da.random.default_rng(seed).standard_normal((rows, cols), chunks=(chunk, cols))
    centered = x - x.mean(axis=0)
    return {
        "mean": x.mean(axis=0),
        "std": x.std(axis=0),
        "cov": (centered.T @ centered) / (rows - 1),
    }
