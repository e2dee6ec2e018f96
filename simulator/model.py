"""The simulator's input: a plan reduced to numbers (`SimInput`).

The planner resolves every task's duration at its worker's configuration, the bytes on every
edge, the placement (task -> worker -> configuration) and the optimizations, and hands them over
as numpy arrays. Indices are positions: task i is the i-th entry of the per-task arrays, and
0..n-1 is a topological order that is also each worker's run order (plan order).

`SimInput(...)` converts array-likes to the right dtypes and validates; `SimInput.build(...)`
fills the optional arrays with defaults (one worker per task, configuration 0, no transfers, no
optimizations). Arrays are not copied when they already have the right dtype: do not mutate them
afterwards; build a new input with `dataclasses.replace(inp, duration_s=...)` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from simulator.errors import SimulatorError

ArrayLike = np.ndarray | Sequence[float] | Sequence[int] | Sequence[bool]

_FLOAT_TASK = ("duration_s", "output_bytes", "storage_bytes")
_DTYPES: dict[str, Any] = {
    "duration_s": np.float64,
    "output_bytes": np.float64,
    "storage_bytes": np.float64,
    "edge_src": np.int64,
    "edge_dst": np.int64,
    "edge_bytes": np.float64,
    "worker": np.int64,
    "worker_config": np.int64,
    "worker_prewarm_at_s": np.float64,
    "worker_preload": np.bool_,
    "delayed_io": np.bool_,
}


@dataclass(frozen=True, eq=False)
class SimInput:
    """A plan as arrays: n tasks, m edges, w workers (see the package docstring for meaning)."""

    duration_s: np.ndarray  # float[n] execution seconds at the worker's configuration
    output_bytes: np.ndarray  # float[n] size of each task's output
    storage_bytes: np.ndarray  # float[n] bytes read from storage (inputs no task produces)
    edge_src: np.ndarray  # int[m] producer task
    edge_dst: np.ndarray  # int[m] consumer task (> producer)
    edge_bytes: np.ndarray  # float[m] bytes moved along the edge
    worker: np.ndarray  # int[n] worker of each task
    worker_config: np.ndarray  # int[w] index into platform.configs
    worker_prewarm_at_s: np.ndarray  # float[w] pre-warm request time; NaN = none
    worker_preload: np.ndarray  # bool[w] fetch remote inputs as soon as they exist
    delayed_io: np.ndarray  # bool[n] skip the upload when every consumer is local
    sink: int
    cpu_demand: np.ndarray | None = None
    """float[n]: CPUs a task keeps busy while it executes, for platforms whose workers share a
    host (`simulator.host`); None: each task uses its worker's configuration CPUs."""

    def __post_init__(self) -> None:
        if self.cpu_demand is not None:
            demand = np.asarray(self.cpu_demand, dtype=np.float64)
            if demand.shape != np.shape(self.duration_s) or not np.all(demand > 0):
                raise SimulatorError("SimInput.cpu_demand must hold one CPU count > 0 per task")
            object.__setattr__(self, "cpu_demand", demand)
        for f in fields(self):
            if f.name in _DTYPES:
                value = getattr(self, f.name)
                try:
                    array = np.asarray(value, dtype=_DTYPES[f.name])
                except (TypeError, ValueError) as err:
                    raise SimulatorError(f"SimInput.{f.name}: {err}") from err
                if array.ndim != 1:
                    raise SimulatorError(f"SimInput.{f.name} must be 1-D, got shape {array.shape}")
                object.__setattr__(self, f.name, array)
        object.__setattr__(self, "sink", int(self.sink))
        self.validate()

    @classmethod
    def build(
        cls,
        duration_s: ArrayLike,
        edges: Sequence[tuple[int, int]] | np.ndarray = (),
        *,
        output_bytes: ArrayLike | None = None,
        storage_bytes: ArrayLike | None = None,
        edge_bytes: ArrayLike | None = None,
        worker: ArrayLike | None = None,
        worker_config: ArrayLike | None = None,
        worker_prewarm_at_s: ArrayLike | None = None,
        worker_preload: ArrayLike | None = None,
        delayed_io: ArrayLike | None = None,
    ) -> SimInput:
        """An input with defaults: edge_bytes = the producer's output_bytes, one worker per
        task, configuration 0, nothing in storage, no pre-warm, pre-load or delayed I/O."""
        durations = np.asarray(duration_s, dtype=np.float64)
        n = durations.shape[0]
        pairs = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        src = pairs[:, 0]
        out = _or_default(output_bytes, np.zeros(n), np.float64)
        placement = _or_default(worker, np.arange(n), np.int64)
        w = int(placement.max()) + 1 if n else 0
        if edge_bytes is None and out.shape == (n,) and (src.size == 0 or src.max() < n):
            edge_bytes = out[src]
        return cls(
            duration_s=durations,
            output_bytes=out,
            storage_bytes=_or_default(storage_bytes, np.zeros(n), np.float64),
            edge_src=src,
            edge_dst=pairs[:, 1],
            edge_bytes=_or_default(edge_bytes, np.zeros(len(pairs)), np.float64),
            worker=placement,
            worker_config=_or_default(worker_config, np.zeros(w), np.int64),
            worker_prewarm_at_s=_or_default(worker_prewarm_at_s, np.full(w, np.nan), np.float64),
            worker_preload=_or_default(worker_preload, np.zeros(w), np.bool_),
            delayed_io=_or_default(delayed_io, np.zeros(n), np.bool_),
            sink=n - 1,
        )

    @property
    def n_tasks(self) -> int:
        return int(self.duration_s.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_src.shape[0])

    @property
    def n_workers(self) -> int:
        return int(self.worker_config.shape[0])

    def validate(self) -> None:
        """Raise SimulatorError naming the first field (and index) that is wrong."""
        n, m, w = self.n_tasks, self.n_edges, self.n_workers
        if n == 0:
            raise SimulatorError("SimInput has no tasks; a plan needs at least its sink")
        _check_lengths(self, n, m, w)
        for name in (*_FLOAT_TASK, "edge_bytes"):
            _check_non_negative(name, getattr(self, name))
        prewarm = self.worker_prewarm_at_s
        bad = ~np.isnan(prewarm) & ~(np.isfinite(prewarm) & (prewarm >= 0))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise SimulatorError(
                f"SimInput.worker_prewarm_at_s[{k}] = {prewarm[k]}: use a time >= 0 or NaN"
            )
        _check_range("edge_src", self.edge_src, n)
        _check_range("edge_dst", self.edge_dst, n)
        _check_range("worker", self.worker, w)
        if (self.worker_config < 0).any():
            k = int(np.flatnonzero(self.worker_config < 0)[0])
            raise SimulatorError(f"SimInput.worker_config[{k}] is negative")
        _check_graph(self, n, w)


def _or_default(value: ArrayLike | None, default: np.ndarray, dtype: Any) -> np.ndarray:
    return np.asarray(default if value is None else value, dtype=dtype)


def _check_lengths(inp: SimInput, n: int, m: int, w: int) -> None:
    expected = {"output_bytes": n, "storage_bytes": n, "worker": n, "delayed_io": n}
    expected |= {"edge_dst": m, "edge_bytes": m}
    expected |= {"worker_prewarm_at_s": w, "worker_preload": w}
    for name, size in expected.items():
        got = getattr(inp, name).shape[0]
        if got != size:
            raise SimulatorError(f"SimInput.{name} has {got} entries, expected {size}")


def _check_non_negative(name: str, values: np.ndarray) -> None:
    bad = ~(np.isfinite(values) & (values >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SimulatorError(f"SimInput.{name}[{i}] = {values[i]}: must be finite and >= 0")


def _check_range(name: str, values: np.ndarray, size: int) -> None:
    bad = (values < 0) | (values >= size)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SimulatorError(f"SimInput.{name}[{i}] = {values[i]} is out of range 0..{size - 1}")


def _check_graph(inp: SimInput, n: int, w: int) -> None:
    backward = inp.edge_src >= inp.edge_dst
    if backward.any():
        e = int(np.flatnonzero(backward)[0])
        raise SimulatorError(
            f"SimInput edge {e} ({inp.edge_src[e]} -> {inp.edge_dst[e]}) does not go forward; "
            "number tasks in a topological order"
        )
    if inp.sink != n - 1:
        raise SimulatorError(
            f"SimInput.sink = {inp.sink}: the sink must be the last task ({n - 1}) "
            "in the topological order"
        )
    consumers = np.bincount(inp.edge_src, minlength=n)
    dangling = np.flatnonzero(consumers[: n - 1] == 0)
    if dangling.size:
        raise SimulatorError(
            f"SimInput task {dangling[0]} has no consumer and is not the sink; "
            "join every output into the sink"
        )
    tasks_per_worker = np.bincount(inp.worker, minlength=w)
    idle = np.flatnonzero(tasks_per_worker == 0)
    if idle.size:
        raise SimulatorError(f"SimInput worker {idle[0]} has no task; number workers densely")
