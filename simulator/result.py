"""What a simulation returns: `SimResult` (times, cost, critical path, slack, events) and the
`Timeline` graph the critical path and slack are computed on.

Timeline nodes are numbered: tasks 0..n-1 (value: execution start), workers n..n+w-1 (value:
ready, start-up done), then pre-load downloads n+w.. (value: transfer end). An edge
(a, b, weight) states value[b] >= value[a] + weight; edges out of a task include the task's own
length (duration + upload), so the sink's end is value[sink] + `sink_length_s`. `node_base` is
the constant a node cannot precede (-inf where none): a worker requested at time 0 or pre-warmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True, eq=False)
class Timeline:
    """The simulated timeline as a max-plus constraint graph (see the module docstring)."""

    n_tasks: int
    n_workers: int
    node_time: np.ndarray  # float[N]
    node_base: np.ndarray  # float[N], -inf where the node has no constant lower bound
    edge_src: np.ndarray  # int[E]
    edge_dst: np.ndarray  # int[E]
    edge_weight: np.ndarray  # float[E]
    order: np.ndarray  # int[N] a topological order (the order the engine computed nodes)
    download_task: np.ndarray  # int[D] task a pre-load download feeds
    download_producer: np.ndarray  # int[D] producer of the downloaded input, -1 = storage
    sink_length_s: float
    critical_nodes: tuple[int, ...]  # source to sink, consecutive nodes joined by tight edges

    def node_label(self, node: int) -> str:
        """'task 3', 'worker 1' or 'download 2->5' (producer -> task; 'storage->5')."""
        n, w = self.n_tasks, self.n_workers
        if node < n:
            return f"task {node}"
        if node < n + w:
            return f"worker {node - n}"
        d = node - n - w
        producer = int(self.download_producer[d])
        origin = "storage" if producer < 0 else str(producer)
        return f"download {origin}->{int(self.download_task[d])}"

    def to_networkx(self) -> nx.DiGraph:
        """The graph with a 'source' and an 'end' node; its longest path length is the makespan.

        Node keys are `node_label` strings; every edge has a `weight`.
        """
        import networkx as nx

        graph = nx.DiGraph()
        labels = [self.node_label(v) for v in range(self.node_time.shape[0])]
        graph.add_nodes_from(["source", "end", *labels])
        for v in np.flatnonzero(np.isfinite(self.node_base)):
            graph.add_edge("source", labels[v], weight=float(self.node_base[v]))
        for a, b, weight in zip(
            self.edge_src.tolist(), self.edge_dst.tolist(), self.edge_weight.tolist(), strict=True
        ):
            if graph.has_edge(labels[a], labels[b]):  # keep the binding one of parallel edges
                weight = max(weight, graph.edges[labels[a], labels[b]]["weight"])
            graph.add_edge(labels[a], labels[b], weight=weight)
        graph.add_edge(labels[self.n_tasks - 1], "end", weight=self.sink_length_s)
        return graph


@dataclass(frozen=True, eq=False)
class SimResult:
    """Outcome of `simulate`. Times are seconds from submission; per-task arrays have n entries,
    per-worker arrays w. Task times: ready (worker reached it and its inputs exist) <= start
    (execution starts, inputs fetched) <= finish (execution ends) <= done (upload ends)."""

    task_ready_s: np.ndarray
    task_start_s: np.ndarray
    task_finish_s: np.ndarray
    task_done_s: np.ndarray
    task_uploads: np.ndarray  # bool[n] the output went to storage
    worker_request_s: np.ndarray
    worker_start_s: np.ndarray  # took a slot and a container; billing starts
    worker_ready_s: np.ndarray  # start-up done
    worker_stop_s: np.ndarray  # last task done; billing stops
    worker_cold: np.ndarray  # bool[w]
    worker_prewarmed: np.ndarray  # bool[w] the request came from the pre-warm time
    worker_billed_s: np.ndarray  # stop - start rounded up to the billing granularity
    makespan_s: float
    cost_usd: float
    gb_s: float  # sum of memory_GB x billed seconds
    cold_starts: int
    invocations: int
    critical_path: tuple[int, ...]  # task indices in time order, ending at the sink
    slack_s: np.ndarray  # float[n]; NaN when simulate(with_slack=False)
    events: tuple[tuple[float, str, str], ...]  # empty unless simulate(record_events=True)
    timeline: Timeline

    @property
    def task_duration_s(self) -> np.ndarray:
        return self.task_finish_s - self.task_start_s

    @property
    def critical_mask(self) -> np.ndarray:
        """bool[n]: the task is on the critical path."""
        mask = np.zeros(self.task_start_s.shape[0], bool)
        mask[list(self.critical_path)] = True
        return mask
