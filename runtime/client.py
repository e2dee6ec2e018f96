"""The client side of a run: upload the plan, start the root workers, wait, collect, clean up.

    result = run_plan(plan)                      # embedded Redis, local launcher
    result = run_plan(plan, redis_url="redis://:pw@host:6379/0", progress=print)

The client is not a scheduler: after starting the workers of the root tasks it only waits for
the run's `done` list. The signal cannot be missed: it is a list, not a pub/sub message, so a
run that finishes before the client starts waiting leaves `ok` there for BLPOP to pop. Every
wait has a deadline (`timeout_s`); past it the run fails naming the tasks still pending.

The run takes what it needs of the platform (keep-warm time, configuration sizes) from the
plan (`Plan.platform_spec`; `planner.plan.platform_of` for plans built by hand), never from a
platform file, which may be absent or changed here.

Whatever the outcome - result, task failure, deadline, Ctrl-C - the run's keys are deleted (the
program lists them all: no SCAN) and, unless the run succeeded, its workers are stopped first,
so nothing writes to the run afterwards. Metrics (`<ns>:metrics:...`) stay: the client writes the
RunRecord, predicted beside observed makespan.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import redis

from metadata.connect import sync_client
from metadata.errors import MetadataError, redact_url
from metadata.keys import check_namespace
from metadata.writer import UploadStrategy
from planner.errors import UsageError
from planner.plan import Plan, platform_of
from runtime import shm
from runtime.defaults import CLAIM_GRACE_S, REDIS_URL_ENV
from runtime.embedded import EmbeddedRedis
from runtime.errors import StoreError, store_error
from runtime.ids import DAG_ID_PATTERN, new_dag_id
from runtime.launcher import Launcher
from runtime.pool import DEFAULT_KEEP_WARM_S
from runtime.program import RunSettings, build_program
from runtime.registry import RunRegistry, reclaim_orphans
from runtime.result import RunResult
from runtime.session import RunProgress, RunSession

if TYPE_CHECKING:
    from runtime.environments import Prepared

log = logging.getLogger(__name__)

__all__ = ["LAUNCHERS", "RunProgress", "make_launcher", "run_plan"]

LAUNCHERS = ("local", "thread", "ray", "inline")
"""Launcher names `run_plan` accepts (`inline` runs the reference executor instead)."""

RUN_KEY_TTL_MARGIN_S = 300
"""Run keys expire this long after the run's deadline: the safety net if nobody cleans up."""

SAME_HOST_LAUNCHERS = ("local", "thread")
"""Launchers whose workers all run on the client's host (values may use shared memory)."""

PING_TIMEOUT_S = 5.0
"""How long the first contact with a named Redis may take before the run fails."""


def run_plan(plan: Plan, *, redis_url: str | None = None, namespace: str = "planflow",
             launcher: str | Launcher = "local", timeout_s: float = 3600.0,
             metrics_upload: str = "on-exit",
             progress: Callable[[RunProgress], None] | None = None,
             dag_id: str | None = None, retries: int = 0,
             claim_grace_s: float = CLAIM_GRACE_S,
             shm_max_bytes: int | None = None, ray_address: str | None = None) -> RunResult:
    """Execute `plan` on the decentralized executor and return the sink's result.

    `redis_url=None` uses `$PLANFLOW_REDIS_URL`, else the embedded Redis of `$PLANFLOW_HOME`
    (default ~/.planflow; data kept there), started for this run, or joined if another planflow
    command is using it, and stopped by its last user (`runtime.embedded`).
    `launcher` is `local` (worker processes with enforced limits and a warm pool), `thread`,
    `ray` (each worker a Ray task: `runtime.ray_launcher`; `ray_address` names the cluster,
    else `$RAY_ADDRESS`, else a local Ray instance for the run), `inline` (the reference
    executor, no Redis), or a Launcher object (not closed here).
    `retries`: attempts after the first for tasks whose options set none (`runtime.retry`).
    `claim_grace_s`: how long a started worker may take to take its lease before it is presumed
    lost and relaunched (`runtime.leases`; waiting for a free pool process does not count).
    `shm_max_bytes`: the most bytes of values the run may hold in shared memory when its
    workers share this host (`runtime.shm`; default half of tmpfs's free space; 0: none).
    Raises TaskFailed when a task raises (after its retries), RunError past the deadline,
    StoreError when Redis is unreachable (the URL named without its password), and re-raises
    KeyboardInterrupt after stopping the workers and cleaning up.
    """
    if retries < 0:
        raise UsageError(f"retries must be >= 0, got {retries}")
    if shm_max_bytes is not None and shm_max_bytes < 0:
        raise UsageError(f"shm_max_bytes must be >= 0, got {shm_max_bytes}")
    dag_id = dag_id or new_dag_id(plan.graph.node(plan.graph.sink).function)
    _check_arguments(namespace, launcher, timeout_s, metrics_upload, dag_id)
    if ray_address and launcher != "ray":
        raise UsageError("ray_address (--ray-address) needs the ray launcher (--launcher ray)")
    if launcher == "inline":
        from runtime.inline import run_inline

        return run_inline(plan, dag_id)
    environment = prepare_environment(plan, launcher)  # a pre-run error names the package
    with _redis_for_run(redis_url) as url:
        owned = isinstance(launcher, str)
        launch = make_launcher(launcher, url, namespace, keep_warm_s=keep_warm_of(plan),
                               environment=environment, ray_address=ray_address,
                               requirements=plan.requirements) \
            if isinstance(launcher, str) else launcher
        try:
            reclaim(url, namespace, launch)
            now = time.time()
            settings = RunSettings(
                namespace, dag_id, plan.workflow, plan.graph.sink, len(plan.graph.nodes),
                int(timeout_s) + RUN_KEY_TTL_MARGIN_S, now + timeout_s, launch.name,
                str(UploadStrategy.parse(metrics_upload)), now, retries,
                platform_sizes(plan), claim_grace_s,
                same_host=launch.name in SAME_HOST_LAUNCHERS,
                shm_max_bytes=shm.default_max_bytes() if shm_max_bytes is None
                else shm_max_bytes, env=environment.key if environment else "")
            program = build_program(plan, settings)
            session = RunSession(plan, program, url, launch, progress)
            result = session.execute(timeout_s)
            if environment is None:
                return result
            return dataclasses.replace(result, prepare_s=environment.prepare_s,
                                       environment=environment.to_json())
        finally:
            if owned:
                launch.close()


def prepare_environment(plan: Plan, launcher: str | Launcher) -> Prepared | None:
    """The workers' environment of a plan with requirements, prepared (or found cached) for the
    local launcher (`runtime.environments`); None without requirements, or for launchers
    whose workers run in this process or where they run already (thread, a Launcher object):
    those run here, where compile checked the requirements are installed."""
    if not plan.requirements:
        return None
    if launcher != "local":
        log.info("plan %s: requirements %s are not prepared for launcher %r", plan.workflow,
                 ", ".join(plan.requirements), getattr(launcher, "name", launcher))
        return None
    from runtime.environments import prepare

    return prepare(plan.requirements)


def make_launcher(name: str, url: str, namespace: str, *,
                  keep_warm_s: float = DEFAULT_KEEP_WARM_S,
                  environment: Prepared | None = None,
                  ray_address: str | None = None,
                  requirements: Sequence[str] = ()) -> Launcher:
    """A launcher by name. A local pool outlives the run (kept warm for the next one); on the
    embedded Redis, the server's last user stops it (`runtime.embedded`). `environment`: the
    prepared worker environment whose interpreter the local launcher's pool servers run. A
    local Ray instance started by the `ray` launcher is shut down when the launcher closes."""
    if name == "local":
        from runtime.local import LocalLauncher

        if environment is not None:
            return LocalLauncher(url, namespace, keep_warm_s=keep_warm_s,
                                 python=environment.python, env=environment.key)
        return LocalLauncher(url, namespace, keep_warm_s=keep_warm_s)
    if name == "thread":
        from runtime.threads import ThreadLauncher

        return ThreadLauncher(url)
    if name == "ray":
        from runtime.ray_launcher import RayLauncher  # imports Ray itself, or names the extra

        return RayLauncher(url, namespace, address=ray_address, keep_warm_s=keep_warm_s,
                           requirements=requirements)  # pip requirements -> runtime_env
    raise UsageError(f"unknown launcher '{name}'; choose one of {', '.join(LAUNCHERS)}")


def keep_warm_of(plan: Plan) -> float:
    """The keep-warm time of the plan's platform (how long the local pool keeps idle
    processes); the pool's default for a hand-built plan of no known platform."""
    platform = platform_of(plan)
    return DEFAULT_KEEP_WARM_S if platform is None else float(platform.keep_warm_s)


def platform_sizes(plan: Plan) -> tuple[tuple[int, float], ...]:
    """The (memory MB, CPUs) configurations of the plan's platform; () for a hand-built plan
    of no known platform (then an OOM-killed worker is not relaunched larger)."""
    platform = platform_of(plan)
    return () if platform is None else tuple(
        (c.memory_mb, float(c.cpus)) for c in platform.configs)


def _check_arguments(namespace: str, launcher: str | Launcher, timeout_s: float,
                     metrics_upload: str, dag_id: str) -> None:
    try:
        check_namespace(namespace)
        UploadStrategy.parse(metrics_upload)
    except MetadataError as err:
        raise UsageError(str(err)) from None
    if isinstance(launcher, str) and launcher not in LAUNCHERS:
        raise UsageError(f"unknown launcher '{launcher}'; choose one of {', '.join(LAUNCHERS)}")
    if not timeout_s > 0:
        raise UsageError(f"timeout_s must be > 0, got {timeout_s}")
    if not DAG_ID_PATTERN.match(dag_id):
        raise UsageError(f"bad dag id {dag_id!r}: expected dag-<unix ms>-<name>-<4 hex>")


@contextlib.contextmanager
def _redis_for_run(redis_url: str | None) -> Iterator[str]:
    """The given URL, $PLANFLOW_REDIS_URL, or the embedded server's."""
    url = redis_url or os.environ.get(REDIS_URL_ENV)
    if url:
        _ping(url)
        yield url
        return
    with embedded_store() as server:
        yield server.url


def embedded_store(data_dir: Path | None = None) -> EmbeddedRedis:
    """The data directory's shared embedded Redis (`runtime.embedded`); when its last user
    leaves, the local pools on it are shut down first (their workers' Redis is going away)."""
    from runtime.local import shutdown_all_pools

    return EmbeddedRedis(data_dir=data_dir, persistent=True, on_last_user=shutdown_all_pools)


def _ping(url: str) -> None:
    try:
        client = sync_client(url, socket_timeout=PING_TIMEOUT_S, outage_s=0)
    except ValueError as err:
        raise StoreError(f"bad Redis URL {redact_url(url)}: {err}") from None
    try:
        client.ping()
    except redis.RedisError as err:
        raise store_error(err, url, "connecting") from None
    finally:
        client.close()


def reclaim(url: str, namespace: str, launcher: Launcher | None = None) -> None:
    """Reclaim the runs of `namespace` whose clients were killed (`runtime.registry`); their
    workers are stopped through `launcher` (else through the local pools, if any)."""
    from runtime.pool_client import PoolClient

    client = sync_client(url)
    stop = launcher.stop if launcher is not None else PoolClient(client, namespace).stop
    try:
        for entry in reclaim_orphans(client, namespace, stop):
            shm.remove_run(namespace, entry.dag_id)
            log.warning("reclaimed run %s of '%s' (its client, pid %d, was killed)",
                        entry.dag_id, entry.workflow, entry.pid)
        live = {e.dag_id for e in RunRegistry(client, namespace).entries()}
        for dag_id in shm.sweep(namespace, live):
            log.warning("removed the shared values of run %s, which no live run owns", dag_id)
    except redis.RedisError as err:
        raise store_error(err, url, "reclaiming the runs of killed clients") from err
    finally:
        client.close()
