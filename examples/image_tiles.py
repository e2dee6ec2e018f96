"""Image-tile pipeline: cut a synthetic image into tiles, run a chain of filters per tile,
then merge the tiles and summarise the result.

    planflow run examples/image_tiles.py -p size=256 -p tiles=4
"""

import numpy as np

from planflow import task, workflow


def synthetic_region(size: int, rows: slice, cols: slice) -> np.ndarray:
    """A region of the deterministic synthetic image of `size` x `size` pixels."""
    y, x = np.mgrid[rows, cols]
    return (np.sin(x / 9.0) + np.cos(y / 13.0) + (x * y) / float(size * size)).astype(np.float64)


@task
def cut(size: int, tiles: int, i: int, j: int) -> np.ndarray:
    t = size // tiles
    return synthetic_region(size, slice(i * t, (i + 1) * t), slice(j * t, (j + 1) * t))


@task
def blur(tile: np.ndarray) -> np.ndarray:
    padded = np.pad(tile, 1, mode="edge")
    return sum(padded[dy:dy + tile.shape[0], dx:dx + tile.shape[1]]
               for dy in range(3) for dx in range(3)) / 9.0


@task
def normalize(tile: np.ndarray) -> np.ndarray:
    return (tile - tile.min()) / (np.ptp(tile) or 1.0)


@task
def threshold(tile: np.ndarray, level: float) -> np.ndarray:
    return (tile > level).astype(np.uint8)


@task
def merge(grid: list[list[np.ndarray]]) -> dict[str, int]:
    image = np.block(grid)
    return {"height": int(image.shape[0]), "width": int(image.shape[1]),
            "bright_pixels": int(image.sum())}


@workflow
def image_tiles(size: int = 256, tiles: int = 4, level: float = 0.5):
    grid = [
        [threshold(normalize(blur(cut(size, tiles, i, j))), level) for j in range(tiles)]
        for i in range(tiles)
    ]
    return merge(grid)
