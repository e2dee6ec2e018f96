"""The ray launcher on a local multi-node Ray cluster (`ray.cluster_utils.Cluster`: a head and a
second node, 1 CPU each): the examples give the inline executor's results, a worker process
killed on its node is relaunched and the run completes, the CLI joins a cluster by address, and
a run also completes with its data plane on Redis Cluster.

Ray is an optional extra: without it these tests fail, naming the install, unless pytest was
given `--no-ray` (which skips them; CI installs Ray and runs them)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from metadata.connect import CLUSTER_MIN_REDIS_PY
from planner.errors import UsageError
from planner.loader import load_graph
from runtime.client import run_plan
from runtime.inline import run_inline
from runtime.ray_launcher import RayLauncher
from tests.runtime import plans, workflows
from tests.runtime.ray_nodes import WAIT_FOR_S, ray_nodes
from tests.runtime.redis_cluster import redis_cluster
from tests.runtime.test_examples import EXAMPLES, SMALL, same

ROOT = Path(__file__).resolve().parents[2]
RAY_PLATFORM = ROOT / "simulator" / "platforms" / "ray.toml"

@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A head node and one more, 1 CPU each; this process is connected to it."""
    with ray_nodes(2, cpus=1) as cluster:
        yield cluster


@pytest.fixture()
def ray_launcher(ray_cluster: Any, redis_url: str, namespace: str) -> Iterator[RayLauncher]:
    launcher = RayLauncher(redis_url, namespace)
    assert not launcher.owns_ray  # the test's connection is used, and left alone
    yield launcher
    launcher.close()


@pytest.mark.ray
def test_two_nodes_of_one_cpu(ray_cluster: Any) -> None:
    import ray

    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert [n["Resources"]["CPU"] for n in nodes] == [1.0, 1.0]


@pytest.mark.parametrize("example", sorted(SMALL))
@pytest.mark.ray
def test_example_equals_inline_on_ray(
    example: str, redis_url: str, namespace: str, ray_launcher: RayLauncher
) -> None:
    plan = plans.round_robin(load_graph(str(EXAMPLES / example), SMALL[example]), 2)
    result = run_plan(
        plan, redis_url=redis_url, namespace=namespace, launcher=ray_launcher, timeout_s=120.0
    )
    assert result.executor == "redis/ray"
    assert same(result.result, run_inline(plan).result)


@pytest.mark.ray
def test_workers_spread_over_both_nodes_and_record_their_start(
    redis_url: str, namespace: str, ray_launcher: RayLauncher
) -> None:
    """Eight one-CPU workers wanting to run at once: Ray places them on both nodes, and each
    worker's metrics record its start request and start (the planner's start-up figures)."""
    from metadata.store import MetricsStore

    plan = plans.per_task(plans.graph(workflows.where, width=8, seconds=0.5))
    result = run_plan(
        plan, redis_url=redis_url, namespace=namespace, launcher=ray_launcher, timeout_s=120.0
    )
    assert len(result.result) == 2  # two node ids
    with MetricsStore(redis_url, namespace) as store:
        workers = store.worker_records(result.dag_id)
    assert len(workers) == len(plan.workers)
    assert all(w.started_at >= w.requested_at for w in workers)
    assert any(not w.cold for w in workers)  # Ray reused a process: a warm start


@pytest.mark.ray
def test_a_worker_killed_on_its_node_is_relaunched_and_the_run_completes(
    redis_url: str, namespace: str, ray_launcher: RayLauncher, tmp_path: Path
) -> None:
    pidfile = tmp_path / "sleeper.pid"
    plan = plans.per_task(plans.graph(workflows.slow, seconds=2.0, pidfile=pidfile))
    killed: list[int] = []

    def kill_first() -> None:
        deadline = time.monotonic() + WAIT_FOR_S
        while time.monotonic() < deadline and not (pidfile.exists() and pidfile.read_text()):
            time.sleep(0.05)
        killed.append(int(pidfile.read_text()))
        os.kill(killed[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_first)
    killer.start()
    result = run_plan(
        plan, redis_url=redis_url, namespace=namespace, launcher=ray_launcher, timeout_s=120.0
    )
    killer.join()
    assert result.result == 2
    assert killed and killed[0] != os.getpid()
    assert [(r["worker_id"], r["reason"]) for r in result.recovered] == [("w1", "crash")]


@pytest.mark.ray
def test_the_cli_joins_a_ray_cluster_by_address(
    ray_cluster: Any, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    def cli(*args: str) -> dict[str, Any]:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "planflow",
                "run",
                str(EXAMPLES / "tree_reduction.py"),
                "-p",
                "n=16",
                "--namespace",
                namespace,
                "--json",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            check=False,
            env={**os.environ, "RAY_ADDRESS": ""},
        )
        assert out.returncode == 0, out.stderr[-3000:]
        return dict(json.loads(out.stdout))

    inline = cli("--inline")
    on_ray = cli(
        "--launcher",
        "ray",
        "--ray-address",
        ray_cluster.address,
        "--redis",
        redis_url,
        "--platform",
        str(RAY_PLATFORM),
    )
    assert on_ray["executor"] == "redis/ray"
    assert on_ray["result"] == inline["result"]


@pytest.mark.ray
@pytest.mark.skipif(tuple(int(x) for x in redis.__version__.split(".")[:2]) < CLUSTER_MIN_REDIS_PY,
                    reason="Redis Cluster needs redis-py 6.1 (test_cluster checks the refusal)")
def test_examples_run_on_ray_with_the_data_plane_on_redis_cluster(
    ray_cluster: Any, namespace: str
) -> None:
    with redis_cluster(shards=3) as url:
        launcher = RayLauncher(url, namespace)
        try:
            for example in ("tree_reduction.py", "wordcount.py"):
                plan = plans.round_robin(load_graph(str(EXAMPLES / example), SMALL[example]), 2)
                result = run_plan(
                    plan, redis_url=url, namespace=namespace, launcher=launcher, timeout_s=120.0
                )
                assert same(result.result, run_inline(plan).result)
        finally:
            launcher.close()


@pytest.mark.ray
def test_a_plan_no_node_fits_is_refused_before_it_starts(
    redis_url: str, namespace: str, ray_launcher: RayLauncher
) -> None:
    plan = plans.per_task(plans.graph(workflows.chain, n=2), memory_mb=2 * 1769)
    with pytest.raises(UsageError, match="no node of the Ray cluster fits"):
        run_plan(
            plan, redis_url=redis_url, namespace=namespace, launcher=ray_launcher, timeout_s=60.0
        )


@pytest.mark.ray
def test_a_remote_cluster_refuses_a_unix_socket_redis() -> None:
    with pytest.raises(UsageError, match="Unix socket"):
        RayLauncher("unix:///tmp/planflow-none.sock?db=0", "planflow", address="10.0.0.1:6379")


def test_without_ray_the_launcher_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'planflow\[ray\]'"):
        RayLauncher("redis://127.0.0.1:1/0", "planflow")


def test_planflow_imports_without_ray() -> None:
    code = (
        "import sys; sys.modules['ray'] = None; import planflow, planflow.cli, "
        "runtime.client, runtime.ray_launcher, runtime.ray_requests, runtime.worker"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr


def test_workers_ask_for_workers_on_the_run_list_only_while_the_run_exists(
    redis_url: str, namespace: str
) -> None:
    import redis

    from runtime.keys import RunKeys
    from runtime.launcher import WorkerSpec
    from runtime.ray_requests import RayRequests, decode_requests

    dag = "dag-1700000000000-sink-abcd"
    keys = RunKeys(namespace, dag)
    client = redis.Redis.from_url(redis_url)
    try:
        specs = [WorkerSpec(namespace, dag, w, 1769, 1.0, 1.0) for w in ("w1", "w2")]
        RayRequests(client, namespace).start(specs)
        assert not client.exists(keys.launch())  # no run: nothing written
        client.hset(keys.progress(), mapping={"total": 2, "done": 0})
        RayRequests(client, namespace).start(specs)
        (raw,) = client.lrange(keys.launch(), 0, -1)
        assert decode_requests(raw) == specs
    finally:
        client.delete(keys.progress(), keys.launch())
        client.close()


def test_a_ray_address_needs_the_ray_launcher() -> None:
    with pytest.raises(UsageError, match="--launcher ray"):
        run_plan(
            plans.per_task(plans.graph(workflows.chain, n=2)),
            launcher="thread",
            ray_address="127.0.0.1:6380",
        )
