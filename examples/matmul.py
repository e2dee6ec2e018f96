"""Chunked matrix multiplication: C = A @ B over a grid of blocks.

Every block product A[i,k] @ B[k,j] is a task (fan-out); each C[i,j] sums its products (fan-in);
the result is a checksum of C and the block count, so it prints small.

    planflow run examples/matmul.py -p size=512 -p blocks=4
"""

import numpy as np

from planflow import task, workflow


@task
def make_block(size: int, blocks: int, which: str, i: int, j: int) -> np.ndarray:
    b = size // blocks
    rng = np.random.default_rng([ord(which), i, j])
    return rng.standard_normal((b, b))


@task
def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a @ b


@task
def add_blocks(parts: list[np.ndarray]) -> np.ndarray:
    return np.sum(parts, axis=0)


@task
def checksum(rows: list[list[np.ndarray]]) -> dict[str, float]:
    c = np.block(rows)
    return {"sum": round(float(c.sum()), 6), "frobenius": round(float(np.linalg.norm(c)), 6)}


@workflow
def matmul(size: int = 256, blocks: int = 4):
    a = [[make_block(size, blocks, "A", i, k) for k in range(blocks)] for i in range(blocks)]
    b = [[make_block(size, blocks, "B", k, j) for j in range(blocks)] for k in range(blocks)]
    rows = [
        [add_blocks([multiply(a[i][k], b[k][j]) for k in range(blocks)]) for j in range(blocks)]
        for i in range(blocks)
    ]
    return checksum(rows)
