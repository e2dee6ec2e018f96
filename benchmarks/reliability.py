"""Reliability soak: many runs with randomly injected faults; every run must end defined.

    python benchmarks/reliability.py [--runs 40] [--fault-rate 0.3] [--seed 1] [--width 6]

Each run is a fan-out/fan-in (`inc-0 -> chaos-0..W-1 -> total-0`) on the local launcher (warm
pool, limits enforced) against one private Redis, workers placed round robin on 3 workers.
Each `chaos` task draws, from a generator seeded by (seed, run), one behaviour; a fault with
probability `--fault-rate`, split evenly between:

- `raise_once`: raises on its first attempt (its `retries=2` recover it);
- `kill_once`: SIGKILLs its own worker process on its first attempt (the pool relaunches it);
- `raise_always`: raises on every attempt (the run must fail cleanly: TaskFailed naming it).

Outcomes per run: *completed correctly* (right result, no key of the run left), *failed
cleanly* (a run with a `raise_always` task raised TaskFailed naming one, no key left), *hang*
(the run hit its deadline: must be 0), *wrong* (anything else), and *data lost*: tasks of a
completed run whose successful metrics record is missing (must be 0). Printed, and written to
benchmarks/results/reliability.json. Worker relaunches of completed runs are listed per run
(`recovered`); `relaunched_lease_expired` counts those the client made because a lease ran out
(e.g. a worker claimed but never started: its start request was lost with the worker that
claimed it, killed right after its batch).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planflow import task, workflow
from planner.loader import trace_workflow
from planner.plan import Plan, PlanSummary, TaskPlan, WorkerPlan

RUN_TIMEOUT_S = float(os.environ.get("SOAK_RUN_TIMEOUT_S", "120"))
"""Deadline of one run: reaching it counts as a hang."""

METRICS_WAIT_S = 15.0
"""How long to wait for the workers of a completed run to flush their metrics."""

MEMORY_MB = 512
WORKERS = 3
FAULTS = ("raise_once", "kill_once", "raise_always")


def _bump(path: str) -> int:
    try:
        with open(path) as f:
            n = int(f.read() or 0) + 1
    except FileNotFoundError:
        n = 1
    with open(path, "w") as f:
        f.write(str(n))
    return n


@task
def inc(x: int) -> int:
    return x + 1


@task(retries=2, retry_backoff_s=0.01)
def chaos(x: int, i: int, mode: str, counter: str) -> int:
    attempt = _bump(counter)
    if mode == "raise_always" or (mode == "raise_once" and attempt == 1):
        raise RuntimeError(f"injected fault in chaos {i} (attempt {attempt})")
    if mode == "kill_once" and attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * i


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@workflow
def soak(modes: str = "", counters: str = ""):
    """inc-0 -> chaos-0..W-1 -> total-0"""
    root = inc(0)
    parts = [chaos(root, i, m, c) for i, (m, c) in
             enumerate(zip(modes.split(","), counters.split(","), strict=True))]
    return total(parts)


def build_plan(modes: list[str], counters: list[str]) -> Plan:
    g = trace_workflow(soak, {"modes": ",".join(modes), "counters": ",".join(counters)})
    cpus = MEMORY_MB / 1769
    owner = {n.id: f"w{i % WORKERS}" for i, n in enumerate(g.nodes)}
    order: dict[str, list[str]] = {}
    for n in g.nodes:
        order.setdefault(owner[n.id], []).append(n.id)
    tasks = {t: TaskPlan(t, MEMORY_MB, cpus, w) for t, w in owner.items()}
    workers = tuple(WorkerPlan(w, MEMORY_MB, cpus, tuple(ts)) for w, ts in order.items())
    return Plan(g, "soak", "local", tasks, workers, PlanSummary(0.0, 0.0, 0.0, WORKERS, WORKERS))


def draw_modes(rng: random.Random, width: int, rate: float) -> list[str]:
    return [rng.choice(FAULTS) if rng.random() < rate else "ok" for _ in range(width)]


def missing_records(url: str, namespace: str, plan: Plan, dag_id: str) -> int:
    """Tasks of a completed run without a successful metrics record (after a flush wait)."""
    from metadata.store import MetricsStore

    keys = {n.function_key for n in plan.graph.nodes}
    deadline = time.monotonic() + METRICS_WAIT_S
    with MetricsStore(url, namespace) as store:
        while True:
            found = {r.task_id for recs in store.task_records(keys).values() for r in recs
                     if r.run_id == dag_id and r.ok}
            missing = len(plan.graph.nodes) - len(found)
            if missing == 0 or time.monotonic() > deadline:
                return missing
            time.sleep(0.1)


def one_run(i: int, args: argparse.Namespace, url: str, launcher: Any, tmp: Path,
            client: Any) -> dict[str, Any]:
    from runtime.client import run_plan
    from runtime.errors import RunError, TaskFailed

    rng = random.Random(f"{args.seed}/{i}")
    modes = draw_modes(rng, args.width, args.fault_rate)
    counters = [str(tmp / f"r{i}-c{k}") for k in range(args.width)]
    plan = build_plan(modes, counters)
    expected = sum(1 * k for k in range(args.width))
    outcome, lost, dag_id, message = "wrong", 0, "", ""
    recovered: list[str] = []
    try:
        result = run_plan(plan, redis_url=url, namespace=args.namespace, launcher=launcher,
                          timeout_s=RUN_TIMEOUT_S, metrics_upload="per-task")
        dag_id = result.dag_id
        recovered = [f"{r['worker_id']}:{r['reason']}" for r in result.recovered]
        if result.result == expected and "raise_always" not in modes:
            outcome = "completed"
            lost = missing_records(url, args.namespace, plan, dag_id)
    except TaskFailed as err:
        if "raise_always" in modes and modes[int(err.task_id.split("-")[1])] == "raise_always":
            outcome = "failed_cleanly"
    except RunError as err:
        outcome, message = ("hang" if "did not finish" in str(err) else "wrong"), str(err)
    left = [k for k in client.scan_iter(f"{args.namespace}:{{*", count=1000)]
    if left and outcome in ("completed", "failed_cleanly"):
        outcome = "wrong"
    faults = sum(m != "ok" for m in modes)
    return {"run": i, "modes": modes, "faults": faults, "outcome": outcome, "lost": lost,
            "keys_left": len(left), "error": message, "recovered": recovered}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--width", type=int, default=6)
    parser.add_argument("--namespace", default="soak")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" /
                                             "reliability.json"))
    args = parser.parse_args()

    import redis

    from runtime.embedded import EmbeddedRedis
    from runtime.local import LocalLauncher

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    rows = []
    with EmbeddedRedis(persistent=False, port=port) as server, \
            tempfile.TemporaryDirectory(prefix="planflow-soak-") as tmp:
        client = redis.Redis.from_url(server.url)
        launcher = LocalLauncher(server.url, args.namespace, keep_warm_s=60.0,
                                 shutdown_on_close=True)
        try:
            for i in range(args.runs):
                row = one_run(i, args, server.url, launcher, Path(tmp), client)
                rows.append(row)
                print(f"run {i:3d}: {row['outcome']:15s} faults={row['faults']} "
                      f"{','.join(row['modes'])}", flush=True)
        finally:
            launcher.close()
            client.close()
    outcomes = [r["outcome"] for r in rows]
    summary = {
        "runs": len(rows), "seed": args.seed, "fault_rate": args.fault_rate,
        "width": args.width,
        "faults_injected": sum(r["faults"] for r in rows),
        "faults_by_kind": {k: sum(r["modes"].count(k) for r in rows) for k in FAULTS},
        "completed_correctly": outcomes.count("completed"),
        "failed_cleanly": outcomes.count("failed_cleanly"),
        "hangs": outcomes.count("hang"),
        "wrong": outcomes.count("wrong"),
        "data_lost": sum(r["lost"] for r in rows),
        "relaunched_lease_expired": sum(x.endswith(":lease-expired") for r in rows
                                        for x in r["recovered"]),
        "wall_s": round(time.perf_counter() - started, 1),
        "python": sys.version.split()[0],
    }
    print(json.dumps(summary, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "runs": rows}, indent=2) + "\n")
    print(f"written to {out}")
    return 0 if summary["hangs"] == 0 and summary["data_lost"] == 0 and \
        summary["wrong"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
