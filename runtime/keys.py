"""Every Redis key of the executor, built here and nowhere else.

Run keys live under `<namespace>:{<dag id>}:...`: the dag id is a Redis Cluster hash tag, so all
keys of one run share a slot and a Lua script or MULTI may touch any of them. Launcher keys live
under `<namespace>:pool:{pool}:...` and outlive runs; their hash tag puts them in one slot too,
since a pool server BLPOPs its control list and the request list in one command. The namespace
keys (`<namespace>:runs`) and the metrics keys carry no tag: on Redis Cluster, different runs
spread over the shards by their dag ids, and the metrics by function and run. Metrics keys
(`<namespace>:metrics:...`) belong to `metadata.keys`.

| run key `<ns>:{<dag>}:`... | type   | written by           | holds                             |
|----------------------------|--------|----------------------|-----------------------------------|
| `shared`                   | string | client               | functions, run settings (zlib)    |
| `w:<worker>`               | string | client               | one worker's program (zlib)       |
| `started`                  | hash   | client, BATCH script | worker id -> 1, claimed by HSETNX |
| `deps:<task>`              | set    | BATCH script         | finished remote parents (string   |
|                            |        |                      | if the task has just one)         |
| `notify:<worker>`          | list   | BATCH script         | the worker's tasks made ready     |
| `out:<worker>`             | hash   | worker               | task -> output, for the worker's  |
|                            |        |                      | tasks with a remote consumer      |
| `progress`                 | hash   | client, BATCH script | total, done, running              |
| `timings`                  | list   | BATCH script         | JSON [task, worker, start, end]   |
| `errors`                   | hash   | workers, pool        | task id -> error record JSON      |
| `done`                     | list   | sink worker, errors  | completion signal: ok / error     |
| `result`                   | string | sink worker          | the sink's output (pickled)       |
| `leases`                   | hash   | workers (LEASE),     | worker id -> "<generation>        |
|                            |        | relaunchers          | <expires at, unix s>"             |
| `recovered`                | list   | RELAUNCH script      | JSON: worker relaunches (reason,  |
|                            |        |                      | task, configuration)              |
| `relaunched`               | hash   | RELAUNCH script      | worker id -> its latest spec JSON |
|                            |        |                      | (budgets carried across relaunchers)|
| `shm`                      | string | RESERVE script       | bytes of values the run holds in  |
|                            |        |                      | shared memory (`runtime.shm`)     |
| `dynamic`                  | set    | EXPAND script        | names of the keys dynamic fan-outs|
|                            |        |                      | created (`runtime.fanout`)        |
| `failures` (channel)       | pubsub | workers, pools       | error records the store refused   |
|                            |        |                      | to keep (PUBLISH works under OOM) |
| `launch`                   | list   | workers (ray         | JSON arrays of start requests the |
|                            |        | launcher)            | run's client submits to Ray       |

| namespace key (`<ns>:` + ...) | type | holds                                                  |
|-------------------------------|------|--------------------------------------------------------|
| `runs`                        | hash | dag id -> JSON entry of each live run (its client's    |
|                               |      | host, pid and heartbeat: `runtime.registry`)           |

| pool key (`<ns>:pool[@<env>]:{pool}:`) | type | holds (`@<env>`: an environment's pools) |
|-----------------------------------|------|-----------------------------------------------------|
| `requests`                        | list | JSON start requests, popped by a pool server        |
| `alive`                           | hash | pool id -> JSON {pid, expires_at} (heartbeat)       |
| `<pool id>:control`               | list | JSON control messages to one pool (cancel, shutdown) |
| `reply:<token>`                   | list | one-shot replies (pool ready, cancel done)          |
"""

from __future__ import annotations

from collections.abc import Iterable

from metadata.keys import check_namespace


class RunKeys:
    """The key names of one run. One method per key; nothing else formats run keys."""

    __slots__ = ("dag_id", "namespace", "prefix")

    def __init__(self, namespace: str, dag_id: str) -> None:
        self.namespace = check_namespace(namespace)
        self.dag_id = dag_id
        self.prefix = f"{namespace}:{{{dag_id}}}"

    def shared(self) -> str:
        """String: the compressed shared part of the plan (functions, settings)."""
        return f"{self.prefix}:shared"

    def worker_program(self, worker_id: str) -> str:
        """String: the compressed program of one worker (its tasks, in plan order)."""
        return f"{self.prefix}:w:{worker_id}"

    def started(self) -> str:
        """Hash: worker id -> 1 once the worker's start has been claimed."""
        return f"{self.prefix}:started"

    def deps(self, task_id: str) -> str:
        """Set: the task's remote parents that have finished (a string holding the parent when
        the task has a single remote parent). `deps("")` is the prefix the BATCH script appends
        task ids to."""
        return f"{self.prefix}:deps:{task_id}"

    def notify(self, worker_id: str) -> str:
        """List: the worker's tasks whose remote parents have all finished."""
        return f"{self.prefix}:notify:{worker_id}"

    def outputs(self, worker_id: str) -> str:
        """Hash: task id -> pickled output, for the worker's tasks whose consumer runs elsewhere
        (one key per worker: a batch of outputs is one HSET, a consumer's reads one HMGET per
        producing worker)."""
        return f"{self.prefix}:out:{worker_id}"

    def progress(self) -> str:
        """Hash: `total`, `done` and `running` counters."""
        return f"{self.prefix}:progress"

    def timings(self) -> str:
        """List: JSON batches of observed task timings."""
        return f"{self.prefix}:timings"

    def errors(self) -> str:
        """Hash: task id -> error record JSON."""
        return f"{self.prefix}:errors"

    def done(self) -> str:
        """List: the completion signal the client waits on (`ok` or `error`)."""
        return f"{self.prefix}:done"

    def result(self) -> str:
        """String: the sink's pickled output."""
        return f"{self.prefix}:result"

    def leases(self) -> str:
        """Hash: worker id -> "<generation> <expires at>", the lease of each running worker."""
        return f"{self.prefix}:leases"

    def recovered(self) -> str:
        """List: JSON records of worker relaunches (who, why, at which configuration)."""
        return f"{self.prefix}:recovered"

    def shm_bytes(self) -> str:
        """String (counter): bytes of shared-memory values reserved by the run's workers."""
        return f"{self.prefix}:shm"

    def failures(self) -> str:
        """Pub/sub channel: error records that could not be stored (the store refused the
        write, e.g. out of memory); the run's client listens to it while it waits."""
        return f"{self.prefix}:failures"

    def launch(self) -> str:
        """List: JSON arrays of WorkerSpecs that workers of a `ray` run ask the run's client to
        submit as Ray tasks (`runtime.ray_requests`)."""
        return f"{self.prefix}:launch"

    def relaunched(self) -> str:
        """Hash: worker id -> JSON WorkerSpec of its latest relaunch (generation, budgets)."""
        return f"{self.prefix}:relaunched"

    def dynamic(self) -> str:
        """Set: the names of the keys created by dynamic fan-outs (their workers' programs,
        outputs, notification lists, the joins' dependency sets), deleted with the run."""
        return f"{self.prefix}:dynamic"

    def intermediate(self, storing: Iterable[str], with_deps: Iterable[str],
                     workers: Iterable[str]) -> list[str]:
        """Keys the sink deletes on completion: outputs, dependency sets, notification lists,
        worker programs. `storing`: workers that store outputs; `with_deps`: tasks with remote
        parents; `workers`: every worker of the plan."""
        workers = list(workers)
        return [*(self.outputs(w) for w in storing), *(self.deps(t) for t in with_deps),
                *(self.notify(w) for w in workers), *(self.worker_program(w) for w in workers)]

    def final(self) -> list[str]:
        """Keys the client deletes after reading the outcome (besides the intermediate ones)."""
        return [self.shared(), self.started(), self.progress(), self.timings(), self.errors(),
                self.done(), self.result(), self.leases(), self.recovered(),
                self.relaunched(), self.shm_bytes(), self.dynamic(), self.launch()]


def run_key_pattern(namespace: str, dag_id: str) -> str:
    """SCAN pattern matching every key of one run (reclaiming a run whose client was killed;
    nothing else SCANs)."""
    return f"{RunKeys(namespace, dag_id).prefix}:*"  # a dag id holds no glob characters


class NamespaceKeys:
    """Keys of one namespace that are not a run's, a pool's or the metrics'."""

    __slots__ = ("namespace", "prefix")

    def __init__(self, namespace: str) -> None:
        self.namespace = check_namespace(namespace)
        self.prefix = namespace

    def runs(self) -> str:
        """Hash: dag id -> JSON entry of each live run (`runtime.registry.RunEntry`)."""
        return f"{self.prefix}:runs"


class PoolKeys:
    """Key names of the local launcher's pool servers in one namespace; `env` names a worker
    environment (`runtime.environments`): its pools have keys of their own (`<ns>:pool@<env>:`),
    so a request is served only by a pool running that environment's interpreter."""

    __slots__ = ("env", "namespace", "prefix")

    def __init__(self, namespace: str, env: str = "") -> None:
        self.namespace = check_namespace(namespace)
        if env and not env.isalnum():
            raise ValueError(f"not an environment key: {env!r}")
        self.env = env
        self.prefix = f"{namespace}:pool" + (f"@{env}" if env else "") + ":{pool}"

    def requests(self) -> str:
        """List: JSON worker start requests, popped by any live pool server."""
        return f"{self.prefix}:requests"

    def alive(self) -> str:
        """Hash: pool id -> JSON {pid, expires_at}, refreshed by each pool's heartbeat."""
        return f"{self.prefix}:alive"

    def control(self, pool_id: str) -> str:
        """List: control messages (cancel a run, shut down) for one pool server."""
        return f"{self.prefix}:{pool_id}:control"

    def reply(self, token: str) -> str:
        """List: a one-shot reply (pool ready, cancellation done)."""
        return f"{self.prefix}:reply:{token}"
