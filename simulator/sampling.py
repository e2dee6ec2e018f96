"""Stochastic mode: makespan and cost quantiles under uncertain task durations.

Each sample draws every task's duration from a lognormal distribution whose mean is the
predicted duration and whose coefficient of variation (std / mean) is the task's
`duration_spread`: sigma^2 = ln(1 + cv^2), mu = ln(mean) - sigma^2 / 2. A zero spread (or a zero
duration) keeps the duration fixed. Lognormal keeps durations positive and right-skewed, as
measured runtimes are. Placement and everything else stay as given; each sample is a full
`simulate` without events, critical path or slack. The generator comes from the caller (`seed`
is an int or a `numpy.random.Generator`), never from global state: the same seed gives the same
quantiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import SimulatorError
from simulator.model import SimInput
from simulator.platform import Platform
from simulator.prepare import prepare
from simulator.simulate import bill, run_engine

QUANTILES = (0.5, 0.9, 0.99)
"""Reported quantiles: p50, p90, p99."""


@dataclass(frozen=True)
class Quantiles:
    """Summary of one sampled quantity."""

    p50: float
    p90: float
    p99: float
    mean: float

    @classmethod
    def of(cls, values: np.ndarray) -> Quantiles:
        p50, p90, p99 = (float(q) for q in np.quantile(values, QUANTILES))
        return cls(p50=p50, p90=p90, p99=p99, mean=float(values.mean()))


@dataclass(frozen=True, eq=False)
class SampleSummary:
    """Quantiles of `samples` simulations, and the raw per-sample values."""

    samples: int
    makespan_s: Quantiles
    cost_usd: Quantiles
    makespans_s: np.ndarray  # float[samples]
    costs_usd: np.ndarray  # float[samples]


def draw_durations(
    mean_s: np.ndarray, spread: np.ndarray, samples: int, rng: np.random.Generator
) -> np.ndarray:
    """float[samples, n] lognormal durations with the given means and coefficients of variation."""
    sigma = np.sqrt(np.log1p(np.square(spread)))
    with np.errstate(divide="ignore"):
        mu = np.log(mean_s) - sigma**2 / 2
    draws = np.exp(mu + sigma * rng.standard_normal((samples, mean_s.shape[0])))
    return np.where((mean_s > 0) & (spread > 0), draws, mean_s)


def simulate_samples(
    inp: SimInput,
    platform: Platform,
    duration_spread: float | np.ndarray,
    samples: int,
    seed: int | np.random.Generator = 0,
) -> SampleSummary:
    """Makespan and cost quantiles over `samples` lognormal draws of task durations."""
    if samples < 1:
        raise SimulatorError(f"samples must be >= 1, got {samples}")
    spread = np.broadcast_to(np.asarray(duration_spread, np.float64), inp.duration_s.shape)
    if not (np.isfinite(spread) & (spread >= 0)).all():
        raise SimulatorError("duration_spread must be finite and >= 0 (a coefficient of variation)")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    prep = prepare(inp, platform)
    durations = draw_durations(inp.duration_s, spread, samples, rng)
    makespans = np.empty(samples)
    costs = np.empty(samples)
    for i in range(samples):
        engine = run_engine(inp, platform, prep, durations[i])
        makespans[i] = engine.done[inp.n_tasks - 1]
        started, stopped = np.asarray(engine.started_at), np.asarray(engine.stopped_at)
        costs[i] = bill(prep, platform, started, stopped)[2]
    return SampleSummary(
        samples=samples,
        makespan_s=Quantiles.of(makespans),
        cost_usd=Quantiles.of(costs),
        makespans_s=makespans,
        costs_usd=costs,
    )
