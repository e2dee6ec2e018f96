"""Local Ray clusters for the Ray tests: `ray.cluster_utils.Cluster` nodes on this machine, this
process connected to them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.ray_launcher import RAY_INSTALL_HINT

NODE_MEMORY_BYTES = 8 * 2**30
"""Memory each test node offers Ray's scheduler (logical: it only places workers; waiting workers
keep their memory, so a small figure could leave a plan waiting for memory no one frees)."""

NODE_OBJECT_STORE_BYTES = 100 * 2**20
"""Object store of each test node (planflow's values go through Redis)."""

WAIT_FOR_S = 60.0
"""Longest a test waits for something a Ray worker does (never asserted as a duration)."""


@contextlib.contextmanager
def ray_nodes(count: int, cpus: int) -> Iterator[Any]:
    """A head node and `count - 1` more of `cpus` CPUs each; shut down afterwards. Without
    Ray the test fails, naming the install (CI installs it; `--no-ray` skips locally)."""
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError as err:
        pytest.fail(f"Ray is not installed ({err}): {RAY_INSTALL_HINT}, or pass --no-ray")
    node: dict[str, Any] = {"num_cpus": cpus, "memory": NODE_MEMORY_BYTES,
                            "object_store_memory": NODE_OBJECT_STORE_BYTES}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        for _ in range(count - 1):
            cluster.add_node(**node)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
