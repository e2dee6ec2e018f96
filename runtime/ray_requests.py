"""What a worker of a `ray` run needs to start other workers: `RayRequests` (no Ray import).

A worker that makes other workers ready (its BATCH claimed their starts) cannot submit Ray tasks
itself without becoming their *owner*: in Ray a task's owner is the process that submitted it,
and when an owner dies its tasks' fate goes with it - a worker killed on one node would take
down the workers it started on others. So workers only ask: they push the specs onto the run's
`launch` list (one guarded RPUSH per batch, `runtime.scripts.push_call`: nothing is written once
the run is over), and the run's client, which owns every Ray task of the run, pops the list and
submits them (`runtime.ray_launcher`). This is the same shape as the local launcher's request
list, per run rather than per namespace, so a run's requests stay in its Redis Cluster slot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import redis

from runtime.keys import RunKeys
from runtime.launcher import WorkerSpec
from runtime.scripts import call_sync, push_call

REQUEST_TTL_S = 3600
"""TTL of a run's `launch` list, refreshed by every push; requests wait there only until the
client pops them (milliseconds), and the client deletes the list with the run's other keys."""


def encode_requests(specs: Sequence[WorkerSpec]) -> str:
    """One `launch` list entry: a JSON array of the specs' JSON."""
    return json.dumps([s.to_json() for s in specs], separators=(",", ":"))


def decode_requests(raw: bytes | str) -> list[WorkerSpec]:
    """The specs of one `launch` list entry."""
    return [WorkerSpec.from_json(s) for s in json.loads(raw)]


class RayRequests:
    """A worker's launcher in a `ray` run: asks the run's client to start workers."""

    name = "ray"

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.redis = client
        self.namespace = namespace

    def prewarm(self, configs: Mapping[tuple[int, float], int], modules: Sequence[str]) -> None:
        return None

    def start(self, specs: Sequence[WorkerSpec]) -> None:
        by_run: dict[str, list[WorkerSpec]] = {}
        for spec in specs:
            by_run.setdefault(spec.dag_id, []).append(spec)
        for dag_id, group in by_run.items():
            keys = RunKeys(self.namespace, dag_id)
            call_sync(
                self.redis, push_call(keys, [keys.launch()], encode_requests(group), REQUEST_TTL_S)
            )

    def stop(self, dag_id: str) -> None:
        return None  # the run's client owns its Ray tasks and cancels them

    def close(self) -> None:
        return None
