"""The same-host data plane (`runtime.shm`, `runtime.values`): large values between workers of
one machine travel through shared memory, copy-on-write for their readers, bounded per run, and
owned by the run: nothing of a run stays in shared memory after success, failure, a killed
worker, or a client stopped by SIGTERM or killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from planflow import task, workflow
from runtime import shm
from runtime.client import run_plan
from runtime.errors import TaskFailed, ValueTooLarge
from runtime.local import LocalLauncher, shutdown_pools
from runtime.values import ValueCodec
from tests.runtime import plans, workflows
from tests.runtime.conftest import run_keys

MB = 1 << 20
WAIT_S = 60.0


@task
def zeros(n: int) -> np.ndarray:
    return np.zeros(n)


@task
def bump_and_sum(x: np.ndarray) -> float:
    x += 1  # writes into its input: must not reach any other reader
    return float(x.sum())


@task
def plain_sum(x: np.ndarray) -> float:
    return float(x.sum())


@task
def pair(a: float, b: float) -> tuple[float, float]:
    return a, b


@workflow
def two_readers(n: int = 1_000_000):
    """zeros-0 -> bump_and_sum-0, plain_sum-0 -> pair-0 (each reader on its own worker)"""
    x = zeros(n)
    return pair(bump_and_sum(x), plain_sum(x))


def leftovers(namespace: str) -> list[str]:
    base = shm.root() / namespace
    return sorted(p.name for p in base.iterdir()) if base.exists() else []


def run(plan: Any, url: str, launcher: LocalLauncher, **kw: Any) -> Any:
    return run_plan(plan, redis_url=url, namespace=launcher.keys.namespace, launcher=launcher,
                    timeout_s=120.0, **kw)


def test_large_values_travel_through_shared_memory_and_are_gone_after_the_run(
        redis_url: str, local_launcher: LocalLauncher, client: redis.Redis) -> None:
    plan = plans.per_task(plans.graph(workflows.fan_of_blobs, width=6, nbytes=2 * MB))
    result = run(plan, redis_url, local_launcher)
    assert result.result == 12 * MB
    assert leftovers(local_launcher.keys.namespace) == []
    assert run_keys(client, local_launcher.keys.namespace) == []


def test_readers_of_one_value_get_copies_on_write(redis_url: str,
                                                  local_launcher: LocalLauncher) -> None:
    g = plans.graph(two_readers, n=1_000_000)  # 8 MB of float64
    result = run(plans.per_task(g), redis_url, local_launcher)
    assert result.result == (1_000_000.0, 0.0)  # the bump stayed in its reader's copy


def test_a_numpy_result_comes_back_equal_to_the_inline_executor(
        redis_url: str, local_launcher: LocalLauncher) -> None:
    g = plans.graph(workflows.fan_of_blobs, width=2, nbytes=MB)
    inline = run_plan(plans.per_task(g), launcher="inline")
    assert run(plans.per_task(g), redis_url, local_launcher).result == inline.result


def test_a_failed_run_leaves_no_shared_value(redis_url: str, local_launcher: LocalLauncher,
                                            tmp_path: Path) -> None:
    g = plans.graph(workflows.blobs_then_fail, width=4, nbytes=2 * MB)
    with pytest.raises(TaskFailed, match="fails after the blobs"):
        run(plans.per_task(g), redis_url, local_launcher)
    assert leftovers(local_launcher.keys.namespace) == []


def test_a_killed_worker_is_relaunched_and_finds_its_shared_inputs(
        redis_url: str, local_launcher: LocalLauncher, tmp_path: Path) -> None:
    g = plans.graph(workflows.blob_then_die_once, nbytes=2 * MB, path=tmp_path / "died")
    result = run(plans.per_task(g), redis_url, local_launcher)
    assert result.result == 2 * MB
    assert [r["reason"] for r in result.recovered] == ["crash"]
    assert leftovers(local_launcher.keys.namespace) == []


def test_values_past_the_runs_bound_spill_to_redis(redis_url: str,
                                                   local_launcher: LocalLauncher) -> None:
    plan = plans.per_task(plans.graph(workflows.fan_of_blobs, width=6, nbytes=2 * MB))
    result = run(plan, redis_url, local_launcher, shm_max_bytes=5 * MB)  # two fit, four spill
    assert result.result == 12 * MB
    assert leftovers(local_launcher.keys.namespace) == []


def test_a_value_neither_path_takes_names_both_limits(tmp_path: Path) -> None:
    codec = ValueCodec(shm_dir=tmp_path, reserve=lambda n: False, value_limit=MB)
    small = codec.encode("t", b"x" * 1000)
    assert not small.shared and codec.decode(small.payload) == (b"x" * 1000, small.nbytes)
    with pytest.raises(ValueTooLarge, match="shared memory is full"):
        codec.encode("t", b"x" * (2 * MB))
    roomy = ValueCodec(shm_dir=tmp_path, reserve=lambda n: True, value_limit=MB)
    big = roomy.encode("t", np.arange(MB, dtype=np.int64))
    assert big.shared and len(big.payload) < 200
    value, nbytes = roomy.decode(big.payload)
    assert np.array_equal(value, np.arange(MB, dtype=np.int64)) and nbytes >= 8 * MB


def start_client(tmp_path: Path, redis_url: str, namespace: str) -> subprocess.Popen[str]:
    """`planflow run` of a plan whose first task's 2 MB value waits in shared memory for the
    second, which sleeps on another worker; returns once the second runs."""
    pidfile, plan_file = tmp_path / "hold.pid", tmp_path / "held.plan"
    plans.per_task(plans.graph(workflows.held, pidfile=pidfile)).save(plan_file)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "planflow", "run", str(plan_file),
                             "--redis", redis_url, "--namespace", namespace], env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + WAIT_S
    while not (pidfile.exists() and pidfile.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_a_stopped_or_killed_client_leaves_no_shared_value(how: str, tmp_path: Path,
                                                           redis_url: str) -> None:
    """SIGTERM: the client cleans up itself. SIGKILL: the next command reclaims the run."""
    ns = f"shm{uuid.uuid4().hex[:8]}"
    try:
        proc = start_client(tmp_path, redis_url, ns)
        assert len(leftovers(ns)) == 1  # the value of blob-0 lives in shared memory
        proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
        proc.wait(timeout=WAIT_S)
        if how == "sigkill":
            assert len(leftovers(ns)) == 1
            follow = subprocess.run([sys.executable, "-m", "planflow", "metrics", "list",
                                     "--redis", redis_url, "--namespace", ns],
                                    capture_output=True, text=True, timeout=WAIT_S, check=False)
            assert follow.returncode == 0, follow.stderr
        assert leftovers(ns) == []
    finally:
        shutdown_pools(redis_url, ns)
