"""The engines of `executor_overhead.py`: planflow (decentralized and inline) and its peers.

Every engine has `name`, `run(graph, plan) -> (seconds, result)` (wall time of the call to its
return) and `close()`. Peers run the planflow task graph's own callables: a node becomes one
Dask task (`to_dask`) or one Ray task (`ray.remote`, inputs as object refs) whose function
rebuilds the planflow task's arguments from its parents' values (`_Call`).

- `Planflow(url, processes)`: `run_plan` with a `LocalLauncher` whose pool holds at most
  `processes` processes; after each run `last` holds the Redis commands per task (INFO
  commandstats delta), the workers started and where the time went (`overhead_breakdown`).
- `PlanflowInline`: `runtime.inline.run_inline` (this process, no Redis).
- `DaskThreaded(n)`, `DaskDistributed(n)` (LocalCluster, n processes of one thread),
  `Ray(n)` (a new local instance, `ray.init(address="local", num_cpus=n)`).
"""

from __future__ import annotations

import time
from typing import Any

import redis
from overhead_breakdown import breakdown

from planner.graph import TaskGraph
from planner.plan import Plan


class _Call:
    """A peer's task: rebuild the planflow task's arguments from its parents' values."""

    def __init__(self, g: TaskGraph, task_id: str) -> None:
        self.code = g.code[task_id]
        self.parents = g.node(task_id).upstream

    def __call__(self, *values: object) -> object:
        return self.code.call(dict(zip(self.parents, values, strict=True)))


def to_dask(g: TaskGraph) -> dict[str, tuple[Any, ...]]:
    return {n.id: (_Call(g, n.id), *n.upstream) for n in g.nodes}


def command_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


class Planflow:
    name = "planflow"

    def __init__(self, url: str, namespace: str, processes: int, timeout_s: float) -> None:
        from runtime.local import LocalLauncher

        self.url, self.namespace, self.timeout_s = url, namespace, timeout_s
        self.processes = processes
        self.redis = redis.Redis.from_url(url)
        self.launcher = LocalLauncher(url, namespace, shutdown_on_close=True,
                                      max_processes=processes)
        self.last: dict[str, Any] = {}

    def run(self, graph: TaskGraph, plan: Plan) -> tuple[float, Any]:
        from runtime.client import run_plan

        before = command_calls(self.redis)
        t0, wall0 = time.perf_counter(), time.time()
        result = run_plan(plan, redis_url=self.url, namespace=self.namespace,
                          launcher=self.launcher, timeout_s=self.timeout_s)
        seconds, wall1 = time.perf_counter() - t0, time.time()
        after = command_calls(self.redis)
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        delta["info"] = delta.get("info", 0) - 1
        n = len(graph.nodes)
        by_type = {k: v / n for k, v in sorted(delta.items(), key=lambda kv: -kv[1]) if v > 0}
        self.last = {
            "pool_processes": self.processes,
            "redis_commands_per_task": sum(by_type.values()),
            "redis_commands_by_type": by_type, "workers_started": result.workers_started,
            "breakdown": breakdown(self.url, self.namespace, plan, result.dag_id, t0=wall0,
                                   t1=wall1)}
        return seconds, result.result

    def close(self) -> None:
        self.launcher.close()
        self.redis.close()


class PlanflowInline:
    name = "planflow-inline"

    def run(self, graph: TaskGraph, plan: Plan) -> tuple[float, Any]:
        from runtime.inline import run_inline

        t0 = time.perf_counter()
        result = run_inline(plan)
        return time.perf_counter() - t0, result.result

    def close(self) -> None:
        return None


class DaskThreaded:
    name = "dask-threaded"

    def __init__(self, processes: int) -> None:
        self.workers = processes

    def run(self, graph: TaskGraph, plan: Plan) -> tuple[float, Any]:
        import dask.threaded

        dsk = to_dask(graph)
        t0 = time.perf_counter()
        result = dask.threaded.get(dsk, graph.sink, num_workers=self.workers)
        return time.perf_counter() - t0, result

    def close(self) -> None:
        return None


class DaskDistributed:
    name = "dask-distributed"

    def __init__(self, processes: int) -> None:
        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(processes=True, n_workers=processes, threads_per_worker=1,
                                    dashboard_address=None)
        self.client = Client(self.cluster)

    def run(self, graph: TaskGraph, plan: Plan) -> tuple[float, Any]:
        dsk = to_dask(graph)
        t0 = time.perf_counter()
        result = self.client.get(dsk, graph.sink)
        return time.perf_counter() - t0, result

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


def _ray_call(call: _Call, *values: object) -> object:
    return call(*values)


class Ray:
    name = "ray"

    def __init__(self, processes: int) -> None:
        import ray

        # address="local": a new instance of our own, never a cluster someone else started here
        ray.init(address="local", num_cpus=processes, include_dashboard=False,
                 log_to_driver=False)
        self.remote = ray.remote(_ray_call)

    def run(self, graph: TaskGraph, plan: Plan) -> tuple[float, Any]:
        import ray

        t0 = time.perf_counter()
        refs: dict[str, Any] = {}
        for n in graph.nodes:  # topological order: every parent's ref exists
            refs[n.id] = self.remote.remote(_Call(graph, n.id), *(refs[p] for p in n.upstream))
        result = ray.get(refs[graph.sink])
        return time.perf_counter() - t0, result

    def close(self) -> None:
        import ray

        ray.shutdown()


def ray_installed() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True
