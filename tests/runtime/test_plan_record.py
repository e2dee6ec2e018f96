"""Every run records its plan's document (`metadata.runplan`); a plan run again in the same
process records the same document without building it again (`runtime.session.plan_document`)."""

from __future__ import annotations

import time
import uuid

from metadata.store import MetricsStore
from runtime.client import run_plan
from runtime.session import plan_document
from runtime.threads import ThreadLauncher
from tests.runtime import plans, workflows

RECORD_WAIT_S = 10.0
"""The document is written by a thread of the client: how long a test waits for it."""


def _recorded(url: str, namespace: str, run_id: str) -> dict[str, object] | None:
    give_up = time.monotonic() + RECORD_WAIT_S
    with MetricsStore(url, namespace) as store:
        while (found := store.plan(run_id)) is None and time.monotonic() < give_up:
            time.sleep(0.05)
    return None if found is None else found.doc


def test_a_plan_run_twice_records_the_same_document_built_once(
        redis_url: str, thread_launcher: ThreadLauncher) -> None:
    namespace = f"doc{uuid.uuid4().hex[:8]}"
    plan = plans.round_robin(plans.graph(workflows.fan, width=4), 2)
    runs = [run_plan(plan, redis_url=redis_url, namespace=namespace, launcher=thread_launcher,
                     timeout_s=30.0) for _ in range(2)]
    docs = [_recorded(redis_url, namespace, r.dag_id) for r in runs]
    assert docs[0] is not None and docs[0] == docs[1] == plan.to_json()
    assert plan_document(plan) is plan_document(plan)  # built once, then reused


def test_a_new_plan_gets_its_own_document() -> None:
    first = plans.one_worker(plans.graph(workflows.chain, n=3))
    second = plans.one_worker(plans.graph(workflows.chain, n=4))
    assert plan_document(first) == first.to_json()
    assert plan_document(second) == second.to_json() != plan_document(first)
