"""Prediction: the one place where the planner learns how long tasks take and what they move.

`predict(graph, platform, ...)` returns `Predictions`: every task's duration at every
configuration of the platform (an n x c table, at the planning quantile when one is asked for),
which configurations are feasible (a `memory_mb` hint or a WfFormat task's recorded memory makes
smaller ones infeasible), each task's output size, the bytes on every edge and the bytes read
from storage, each task's CPU demand at every configuration (what it takes of a host shared by
many workers: learned from measured CPU time, else derived from the durations), and where each
prediction came from (`history`, `history-other-config`, `hint`, `prior`).

Durations and output sizes come from `metadata.MetadataAccess` (history first, then hints, then
global priors). When the metadata package cannot be imported, the same hint model is applied
here: `duration(cpus) = e*max(0, 1-p) + e*p/min(cpus, max(p, 1))`, e = `expected_s` (the global
prior when absent), p = `parallelism` (1 when absent). Edge bytes recorded in a WfFormat trace
override predicted output sizes; otherwise each consumer receives the producer's whole output.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.errors import PlanningError
from planner.graph import TaskGraph

if TYPE_CHECKING:
    from simulator.platform import Platform

FALLBACK_DURATION_S = 0.1
"""Global prior (seconds at >= 1 CPU) when metadata is unavailable; metadata's own is the same."""

FALLBACK_OUTPUT_BYTES = 1024.0
"""Global prior for an output's size (bytes) when metadata is unavailable."""

FALLBACK_SPREAD = 0.3
"""Coefficient of variation assumed for durations when metadata is unavailable."""

MIN_CPU_DEMAND = 0.01
"""Floor of a task's derived CPU demand (a task of no measurable work still takes its share);
metadata's learned demand has the same floor (`metadata.models.MIN_CPU_DEMAND`)."""

SOURCES = ("history", "history-other-config", "hint", "prior")
"""Prediction sources, best first (the same names metadata uses)."""


@dataclass(frozen=True, eq=False)
class Predictions:
    """Everything the planner predicts about one graph on one platform (arrays by task index)."""

    task_ids: tuple[str, ...]
    memory_mb: np.ndarray  # int[c] memory of each configuration
    cpus: np.ndarray  # float[c] CPUs of each configuration
    duration_s: np.ndarray  # float[n, c] planning durations (the quantile when one is set)
    spread: np.ndarray  # float[n, c] coefficient of variation of each duration
    min_memory_mb: np.ndarray  # float[n] least memory each task needs (0 = any)
    output_bytes: np.ndarray  # float[n]
    storage_bytes: np.ndarray  # float[n]
    edge_src: np.ndarray  # int[m], ascending by (dst, position in upstream)
    edge_dst: np.ndarray  # int[m]
    edge_bytes: np.ndarray  # float[m]
    source: np.ndarray  # str[n]
    quantile: float | None = None
    learned_cpu_demand: np.ndarray | None = None
    """float[n, c]: CPU demand from metadata (measured CPU time, else the derived prior);
    None: `cpu_demand` derives it from the durations."""

    @property
    def n_tasks(self) -> int:
        return len(self.task_ids)

    @property
    def n_configs(self) -> int:
        return int(self.memory_mb.shape[0])

    @property
    def feasible(self) -> np.ndarray:
        """bool[n, c]: the configuration has at least the memory the task needs."""
        return self.memory_mb[None, :] >= self.min_memory_mb[:, None]

    @cached_property
    def cpu_demand(self) -> np.ndarray:
        """float[n, c]: CPUs each task keeps busy at each configuration (what it takes of a
        shared host, `simulator.host`): learned from measured CPU time where metadata has it
        (`learned_cpu_demand`), else `derived_cpu_demand`."""
        if self.learned_cpu_demand is not None:
            return self.learned_cpu_demand
        return self.derived_cpu_demand

    @cached_property
    def derived_cpu_demand(self) -> np.ndarray:
        """float[n, c]: the demand the durations imply, the prior without measured CPU time:
        CPU work over duration, at most the configuration's CPUs. The work is duration x CPUs
        at the largest configuration of at most one CPU, where a task is CPU-bound; so a task
        that runs no faster on 2 CPUs than on 1 keeps one busy, and one that halves its time
        keeps two."""
        cpus = self.cpus.astype(np.float64)
        upto_one = cpus <= 1.0
        ref = int(np.flatnonzero(upto_one)[-1]) if upto_one.any() else 0
        work = self.duration_s[:, ref] * cpus[ref]
        with np.errstate(divide="ignore", invalid="ignore"):
            demand = work[:, None] / self.duration_s
        return np.asarray(np.clip(np.nan_to_num(demand, nan=1.0, posinf=1.0),
                                  MIN_CPU_DEMAND, cpus[None, :]), np.float64)

    def source_counts(self) -> dict[str, int]:
        """How many tasks each source predicted (all sources listed)."""
        return {s: int(np.count_nonzero(self.source == s)) for s in SOURCES}

    def parents(self) -> list[list[int]]:
        """Upstream task indices of every task."""
        out: list[list[int]] = [[] for _ in range(self.n_tasks)]
        for s, d in zip(self.edge_src.tolist(), self.edge_dst.tolist(), strict=True):
            out[d].append(s)
        return out

    def children(self) -> list[list[int]]:
        """Downstream task indices of every task, ascending."""
        out: list[list[int]] = [[] for _ in range(self.n_tasks)]
        for s, d in zip(self.edge_src.tolist(), self.edge_dst.tolist(), strict=True):
            out[s].append(d)
        return [sorted(c) for c in out]


def predict(graph: TaskGraph, platform: Platform, *, quantile: float | None = None,
            access: Any = None) -> Predictions:
    """Predict durations, sizes and feasibility of every task of `graph` on `platform`.

    `access` is a `metadata.MetadataAccess` (history); None uses hints and priors only.
    """
    if quantile is not None and not 0.0 < quantile < 1.0:
        raise PlanningError(f"quantile must be in (0, 1), got {quantile}")
    nodes = graph.nodes
    n = len(nodes)
    index = {node.id: i for i, node in enumerate(nodes)}
    memory = np.array([c.memory_mb for c in platform.configs], dtype=np.int64)
    cpus = np.array([c.cpus for c in platform.configs], dtype=np.float64)
    src, dst, recorded = _edges(graph, index)
    storage = np.array([node.storage_bytes for node in nodes], dtype=np.float64)
    need = np.array([node.options.memory_mb or 0 for node in nodes], dtype=np.float64)
    _check_feasible(graph, need, memory)

    if access is None:
        access = _default_access(platform)
    keys = [node.function_key for node in nodes]
    priors = _priors(graph, access)
    hinted_out = _hinted_outputs(graph)
    in_bytes = storage + np.bincount(dst, weights=np.where(np.isnan(recorded),
                                                           hinted_out[src], recorded),
                                     minlength=n)
    if access is None:
        durations, spread, source = _hint_table(graph, cpus, quantile)
        outputs = hinted_out
    else:
        pred = access.predict_durations(keys, in_bytes, cpus, priors)
        durations = pred.quantile(quantile) if quantile is not None else pred.mean_s
        spread, source = np.asarray(pred.cv), np.asarray(pred.source)
        outputs, _ = access.predict_output_bytes(keys, in_bytes, priors)
    edge_bytes = np.where(np.isnan(recorded), np.asarray(outputs, np.float64)[src], recorded)
    pred = Predictions(
        task_ids=tuple(node.id for node in nodes), memory_mb=memory, cpus=cpus,
        duration_s=np.asarray(durations, np.float64), spread=np.asarray(spread, np.float64),
        min_memory_mb=need, output_bytes=np.asarray(outputs, np.float64), storage_bytes=storage,
        edge_src=src, edge_dst=dst, edge_bytes=edge_bytes, source=np.asarray(source),
        quantile=quantile)
    if access is None:
        return pred
    demand, _ = access.predict_cpu_demand(keys, cpus, priors,
                                          prior_demand=pred.derived_cpu_demand)
    return dataclasses.replace(pred, learned_cpu_demand=np.asarray(demand, np.float64))


def learned_platform(platform: Platform, access: Any, workflow: str | None = None) -> Platform:
    """`platform` with the start-up figures its workers measured (`MetadataAccess.
    start_up_figures`: start-up plus plan download, cold and warm; those of `workflow`'s own
    runs when there are enough, since a worker's start-up is mostly its imports; on a host-
    bound platform each taken back to its time alone on the host, which the simulator's host
    model stretches itself), where history has them; configurations with start-ups of their
    own keep them. Unchanged without `access`."""
    figures = {} if access is None else access.start_up_figures(workflow, platform.host_cpus)
    return platform.with_overrides(**figures) if figures else platform


def _edges(graph: TaskGraph, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, recorded bytes or NaN) of every edge, grouped by consumer."""
    src: list[int] = []
    dst: list[int] = []
    nbytes: list[float] = []
    for i, node in enumerate(graph.nodes):
        recorded: Sequence[float | None] = node.edge_bytes or (None,) * len(node.upstream)
        for parent, size in zip(node.upstream, recorded, strict=True):
            src.append(index[parent])
            dst.append(i)
            nbytes.append(math.nan if size is None else float(size))
    return (np.array(src, np.int64), np.array(dst, np.int64), np.array(nbytes, np.float64))


def _check_feasible(graph: TaskGraph, need: np.ndarray, memory: np.ndarray) -> None:
    too_big = np.flatnonzero(need > memory.max())
    if too_big.size:
        node = graph.nodes[int(too_big[0])]
        raise PlanningError(
            f"task '{node.id}' needs {node.options.memory_mb} MB, more than the largest "
            f"configuration of the platform ({int(memory.max())} MB); lower its memory_mb or "
            "choose a platform with larger configurations")


def _default_access(platform: Platform) -> Any:
    """A MetadataAccess without a store (hints and priors), or None if metadata is missing."""
    try:
        from metadata.access import MetadataAccess
    except ImportError:
        return None
    return MetadataAccess(None, transfer_latency_s=platform.storage_latency_s,
                          transfer_bandwidth_bps=platform.storage_bandwidth_bps,
                          cold_start_s=platform.cold_start_s, warm_start_s=platform.warm_start_s)


def _priors(graph: TaskGraph, access: Any) -> list[Any] | None:
    if access is None:
        return None
    from metadata.priors import TaskPrior

    return [TaskPrior(expected_s=o.expected_s, parallelism=o.parallelism,
                      output_bytes=o.output_bytes, memory_mb=o.memory_mb)
            for o in (node.options for node in graph.nodes)]


def _hinted_outputs(graph: TaskGraph) -> np.ndarray:
    return np.array([FALLBACK_OUTPUT_BYTES if node.options.output_bytes is None
                     else float(node.options.output_bytes) for node in graph.nodes], np.float64)


def _hint_table(graph: TaskGraph, cpus: np.ndarray, quantile: float | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hint model without metadata: durations [n, c], spread [n, c], source [n]."""
    e = np.array([node.options.expected_s or FALLBACK_DURATION_S for node in graph.nodes])
    p = np.array([node.options.parallelism or 1.0 for node in graph.nodes])
    table = hint_durations(e, p, cpus)
    sigma = math.sqrt(math.log1p(FALLBACK_SPREAD ** 2))
    if quantile is not None:
        from statistics import NormalDist

        table = table * math.exp(sigma * NormalDist().inv_cdf(quantile))
    source = np.array(["hint" if node.options.expected_s else "prior" for node in graph.nodes])
    return table, np.full(table.shape, FALLBACK_SPREAD), source


def hint_durations(expected_s: np.ndarray, parallelism: np.ndarray, cpus: np.ndarray
                   ) -> np.ndarray:
    """`e*max(0, 1-p) + e*p/min(cpus, max(p, 1))` for every task (rows) and CPU count (cols)."""
    e, p = expected_s[:, None], parallelism[:, None]
    return np.asarray(e * np.maximum(0.0, 1.0 - p) + e * p / np.minimum(cpus[None, :],
                                                                       np.maximum(p, 1.0)))
