"""A numpy pipeline shaped like user code: per chunk, generate a few-MB array, clean it, smooth
it, take its spectrum and summarise it; then combine the summaries pairwise and report.

With the defaults (48 chunks of 512 x 512 float64 = 2 MB each) it has 48 x 5 + 47 + 1 = 288
tasks; each array task takes milliseconds to tens of milliseconds, and every value between
tasks is a few MB, so where tasks run (and what they move) matters as much as what they do.

    planflow run examples/numpy_pipeline.py -p chunks=48 -p side=512
"""

import numpy as np

from planflow import task, workflow


@task
def generate(seed: int, side: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((side, side))


@task
def clean(a: np.ndarray) -> np.ndarray:
    """Clip outliers to 3 standard deviations and centre the columns."""
    limit = 3.0 * a.std()
    clipped = np.clip(a, -limit, limit)
    return clipped - clipped.mean(axis=0)


@task
def smooth(a: np.ndarray) -> np.ndarray:
    """A 5-point moving average along the rows (cumulative sums, no Python loop)."""
    c = np.cumsum(np.pad(a, ((0, 0), (2, 2)), mode="edge"), axis=1)
    c = np.concatenate([np.zeros((a.shape[0], 1)), c], axis=1)
    return (c[:, 5:] - c[:, :-5]) / 5.0


@task
def spectrum(a: np.ndarray) -> np.ndarray:
    """Power per row frequency, averaged over the rows."""
    return (np.abs(np.fft.rfft(a, axis=1)) ** 2).mean(axis=0)


@task
def summarize(a: np.ndarray, power: np.ndarray) -> dict[str, np.ndarray]:
    return {"count": np.array(a.size), "sum": a.sum(), "sumsq": np.square(a).sum(), "power": power}


@task
def combine(x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: x[k] + y[k] for k in x}


@task
def report(total: dict[str, np.ndarray], chunks: int) -> dict[str, float]:
    n = float(total["count"])
    mean = float(total["sum"]) / n
    power = total["power"] / chunks
    return {
        "mean": round(mean, 9),
        "variance": round(float(total["sumsq"]) / n - mean**2, 9),
        "peak_frequency": int(np.argmax(power[1:]) + 1),
    }


@workflow
def numpy_pipeline(chunks: int = 48, side: int = 512, seed: int = 3):
    summaries = []
    for i in range(chunks):
        smoothed = smooth(clean(generate(seed + i, side)))
        summaries.append(summarize(smoothed, spectrum(smoothed)))
    while len(summaries) > 1:
        paired = [combine(a, b) for a, b in zip(summaries[0::2], summaries[1::2], strict=False)]
        summaries = paired + summaries[len(paired) * 2 :]
    return report(summaries[0], chunks)
