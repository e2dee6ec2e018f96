"""The executor on a 3-shard Redis Cluster started by the test on loopback ports: the examples give
the inline executor's results, a failing task fails its run cleanly, a run's keys stay in one slot
and are all deleted, and metrics spread over the shards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from metadata.connect import CLUSTER_MIN_REDIS_PY, cluster_mode, sync_client
from metadata.store import MetricsStore
from planner.loader import load_graph
from runtime.client import run_plan
from runtime.errors import StoreError, TaskFailed
from runtime.inline import run_inline
from runtime.keys import RunKeys
from runtime.local import LocalLauncher
from tests.runtime import plans, workflows
from tests.runtime.conftest import pool_processes
from tests.runtime.redis_cluster import redis_cluster
from tests.runtime.test_examples import EXAMPLES, SMALL, same

pytestmark = pytest.mark.cluster

OLD_REDIS_PY = tuple(int(x) for x in redis.__version__.split(".")[:2]) < CLUSTER_MIN_REDIS_PY


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    with redis_cluster(shards=3) as url:
        yield url


@pytest.fixture(scope="module")
def cluster_launcher(cluster_url: str) -> Iterator[LocalLauncher]:
    namespace = f"testcl{uuid.uuid4().hex[:8]}"
    if OLD_REDIS_PY:
        pytest.skip("redis-py too old for Redis Cluster: test_an_old_redis_py_is_refused")
    launcher = LocalLauncher(cluster_url, namespace, keep_warm_s=120.0, shutdown_on_close=True)
    yield launcher
    launcher.close()
    assert pool_processes(namespace) == [], "the pool server or its workers outlived it"


def test_the_factory_sees_a_cluster_node(cluster_url: str) -> None:
    assert cluster_mode(cluster_url)
    if not OLD_REDIS_PY:
        client = sync_client(cluster_url)
        assert len(client.get_primaries()) == 3  # type: ignore[attr-defined]
        client.close()


@pytest.mark.skipif(not OLD_REDIS_PY, reason="only a redis-py older than 6.1 is refused")
def test_an_old_redis_py_is_refused_naming_the_version_it_needs(cluster_url: str) -> None:
    g = plans.graph(workflows.chain, n=3)
    with pytest.raises(StoreError, match=r"redis-py 6\.1 or newer"):
        run_plan(plans.per_task(g), redis_url=cluster_url, timeout_s=30.0)


@pytest.mark.parametrize("example", sorted(SMALL))
def test_example_equals_inline_on_redis_cluster(
    example: str, cluster_url: str, cluster_launcher: LocalLauncher
) -> None:
    plan = plans.round_robin(load_graph(str(EXAMPLES / example), SMALL[example]), 2)
    result = run_plan(
        plan,
        redis_url=cluster_url,
        namespace=cluster_launcher.keys.namespace,
        launcher=cluster_launcher,
        timeout_s=120.0,
    )
    assert same(result.result, run_inline(plan).result)


def test_runs_leave_no_run_keys_and_metrics_spread_over_shards(
    cluster_url: str, cluster_launcher: LocalLauncher
) -> None:
    ns = cluster_launcher.keys.namespace
    g = plans.graph(workflows.fan, width=8)
    for _ in range(2):
        result = run_plan(
            plans.per_task(g),
            redis_url=cluster_url,
            namespace=ns,
            launcher=cluster_launcher,
            timeout_s=60.0,
        )
        assert result.result == run_inline(plans.per_task(g)).result
    client = sync_client(cluster_url)
    try:
        keys = [k.decode() for k in client.scan_iter(f"{ns}:*", count=1000)]
        assert [k for k in keys if k.startswith(f"{ns}:{{dag-")] == []
        metrics = [k for k in keys if k.startswith(f"{ns}:metrics:")]
        shards = {client.get_node_from_key(k).name for k in metrics}  # type: ignore[attr-defined]
        assert len(shards) > 1, metrics
    finally:
        client.close()
    with MetricsStore(cluster_url, ns) as store:
        assert {r.run_id for r in store.runs()} >= {result.dag_id}


def test_every_key_of_a_run_is_in_the_run_slot() -> None:
    from redis.crc import key_slot

    keys = RunKeys("planflow", "dag-1700000000000-sink-abcd")
    names = [*keys.final(), *keys.intermediate(["w1"], ["t1"], ["w1", "w2"]), keys.failures()]
    assert len({key_slot(n.encode()) for n in names}) == 1


def test_a_failing_task_fails_its_run_cleanly_on_redis_cluster(
    cluster_url: str, cluster_launcher: LocalLauncher
) -> None:
    ns = cluster_launcher.keys.namespace
    with pytest.raises(TaskFailed) as info:
        run_plan(
            plans.per_task(plans.graph(workflows.failing)),
            redis_url=cluster_url,
            namespace=ns,
            launcher=cluster_launcher,
            timeout_s=60.0,
        )
    assert info.value.task_id == "fail-0"
    client = sync_client(cluster_url)
    try:
        assert [k for k in client.scan_iter(f"{ns}:{{dag-*", count=1000)] == []
    finally:
        client.close()
