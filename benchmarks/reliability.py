"""Reliability soak: many runs with randomly injected faults; every run must end defined.

    python benchmarks/reliability.py [--runs 40] [--fault-rate 0.3] [--seed 1] [--width 6]

Each run is a fan-out/fan-in (`inc-0 -> chaos-0..W-1 -> total-0`) on the local launcher (warm
pool, limits enforced) against one private Redis (values limited to 1 MiB, its smallest
`proto-max-bulk-len`), workers placed round robin on 3 workers. Each `chaos` task draws, from a
generator seeded by (seed, run), one behaviour; a fault with probability `--fault-rate`, split
evenly between:

- `raise_once`: raises on its first attempt (its `retries=2` recover it);
- `exit_once`: calls `sys.exit(3)` on its first attempt (a task failure too: retried);
- `kill_once`: SIGKILLs its own worker process on its first attempt (the pool relaunches it);
- `raise_always`: raises on every attempt (the run must fail cleanly: TaskFailed naming it);
- `oversize`: returns 2 MiB, more than the store takes: it travels through shared memory while
  the run's 3 MiB bound has room, else it spills to Redis and is refused before upload
  (ValueTooLarge naming it); when its consumer shares its worker the value never travels. The
  run completes (the consumer counts it as 0) or fails cleanly;
- `oom`: lowers the store's maxmemory to what it holds, then returns 512 KiB: the run must fail
  cleanly with StoreError OOM, or complete correctly when no later write needed memory (its
  value stayed on its worker; the soak restores maxmemory after the run);
- `sigterm` (drawn per run, not per task, with probability `--fault-rate` / 10): the run is a
  `planflow run` subprocess sent SIGTERM once a chaos task has started: it must exit 143 with
  one JSON error object and leave no key of its run and no registry entry.

Besides these, every run exercises the pool's status-slot reads (the server reads each child's
slot while the child rewrites it) and the clean-up races (a failing task's run is deleted while
the others upload and renew leases).

Outcomes per run: *completed correctly* (right result, no key of the run left), *failed
cleanly* (the failure the injected fault must cause, naming it, no key left), *hang* (the run
hit its deadline: must be 0), *wrong* (anything else), and *data lost*: tasks of a completed
run whose successful metrics record is missing (must be 0; a run with an `oom` fault may
complete while its store refuses every metrics write, which is counted apart as
`metrics_refused_by_full_store`). Printed, and written to
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
FAULTS = ("raise_once", "exit_once", "kill_once", "raise_always", "oversize", "oom")

VALUE_LIMIT = 1 << 20
"""The soak Redis's proto-max-bulk-len (the smallest it accepts): larger values are refused."""

SHM_MAX_BYTES = 3 << 20
"""Each run's bound of shared-memory values: one oversize value fits, a second spills to Redis
(and is refused there)."""


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
def chaos(x: int, i: int, mode: str, counter: str) -> int | bytes:
    attempt = _bump(counter)
    if mode == "raise_always" or (mode == "raise_once" and attempt == 1):
        raise RuntimeError(f"injected fault in chaos {i} (attempt {attempt})")
    if mode == "exit_once" and attempt == 1:
        sys.exit(3)
    if mode == "kill_once" and attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "oversize":
        return b"o" * (2 * VALUE_LIMIT)
    if mode == "oom":
        import redis

        store = redis.Redis.from_url(os.environ["PLANFLOW_REDIS_URL"])
        store.config_set("maxmemory", str(int(store.info("memory")["used_memory"]) + 64))
        return b"m" * (VALUE_LIMIT // 2)
    return x * i


@task
def total(xs: list[int | bytes]) -> int:
    return sum(x for x in xs if isinstance(x, int))


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


def expected_result(modes: list[str]) -> int:
    """The sum a completed run returns: x * i per chaos task, 0 for a bytes value."""
    return sum(k for k, m in enumerate(modes) if m not in ("oversize", "oom"))


def failed_as_it_must(err: Exception, modes: list[str]) -> bool:
    """Whether a run's error is what one of its injected faults must cause, naming it."""
    from runtime.errors import StoreError, TaskFailed

    if isinstance(err, StoreError):
        return "oom" in modes and err.condition == "OOM"
    if not isinstance(err, TaskFailed) or not err.task_id.startswith("chaos-"):
        return False
    mode = modes[int(err.task_id.split("-")[1])]
    return (mode, err.exc_type) in (("raise_always", "RuntimeError"),
                                    ("oversize", "ValueTooLarge"))


def one_run(i: int, args: argparse.Namespace, url: str, launcher: Any, tmp: Path,
            client: Any) -> dict[str, Any]:
    from planner.errors import PlanflowError
    from runtime.client import run_plan

    rng = random.Random(f"{args.seed}/{i}")
    modes = draw_modes(rng, args.width, args.fault_rate)
    counters = [str(tmp / f"r{i}-c{k}") for k in range(args.width)]
    plan = build_plan(modes, counters)
    if rng.random() < args.fault_rate / 10:
        return sigterm_run(i, args, url, plan, modes, counters, tmp, client)
    outcome, lost, dag_id, message = "wrong", 0, "", ""
    recovered: list[str] = []
    try:
        result = run_plan(plan, redis_url=url, namespace=args.namespace, launcher=launcher,
                          timeout_s=RUN_TIMEOUT_S, metrics_upload="per-task",
                          shm_max_bytes=SHM_MAX_BYTES)
        dag_id = result.dag_id
        recovered = [f"{r['worker_id']}:{r['reason']}" for r in result.recovered]
        if result.result == expected_result(modes) and "raise_always" not in modes:
            outcome = "completed"
            lost = missing_records(url, args.namespace, plan, dag_id)
        else:
            message = f"result {result.result!r} with faults {modes}"
    except PlanflowError as err:
        if "did not finish" in str(err):
            outcome = "hang"
        elif failed_as_it_must(err, modes):
            outcome = "failed_cleanly"
        message = str(err)
    finally:
        client.config_set("maxmemory", "0")  # an `oom` fault lowered it
    left = [k for k in client.scan_iter(f"{args.namespace}:{{*", count=1000)]
    if left and outcome in ("completed", "failed_cleanly"):
        outcome = "wrong"
    faults = sum(m != "ok" for m in modes)
    return {"run": i, "modes": modes, "faults": faults, "outcome": outcome, "lost": lost,
            "keys_left": len(left), "error": message if outcome != "completed" else "",
            "recovered": recovered}


def sigterm_run(i: int, args: argparse.Namespace, url: str, plan: Plan, modes: list[str],
                counters: list[str], tmp: Path, client: Any) -> dict[str, Any]:
    """Run the plan as `planflow run` and SIGTERM it once a chaos task has started: it must
    exit 143 with one JSON error object, its run's keys and registry entry gone."""
    import subprocess

    from runtime.keys import NamespaceKeys

    path = tmp / f"r{i}.plan"
    plan.save(path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "planflow", "run", str(path), "--redis", url,
                             "--namespace", args.namespace, "--json"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not any(os.path.exists(c) for c in counters) and proc.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        outcome = "hang"
    else:
        error = json.loads(out).get("error") if out.strip() else None
        clean = proc.returncode == 143 and error is not None and error.get("exit_code") == 143
        outcome = "failed_cleanly" if clean else (
            "completed" if proc.returncode == 0 else "wrong")  # it may finish before the signal
    client.config_set("maxmemory", "0")
    left = [k for k in client.scan_iter(f"{args.namespace}:{{*", count=1000)]
    registered = client.hlen(NamespaceKeys(args.namespace).runs())
    if (left or registered) and outcome != "hang":
        outcome = "wrong"
    return {"run": i, "modes": [*modes, "sigterm"], "faults": sum(m != "ok" for m in modes) + 1,
            "outcome": outcome, "lost": 0, "keys_left": len(left),
            "error": "" if outcome == "failed_cleanly" else err.strip()[-300:],
            "recovered": []}


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
        client.config_set("proto-max-bulk-len", str(VALUE_LIMIT))
        launcher = LocalLauncher(server.url, args.namespace, keep_warm_s=60.0,
                                 shutdown_on_close=True)
        try:
            for i in range(args.runs):
                row = one_run(i, args, server.url, launcher, Path(tmp), client)
                rows.append(row)
                print(f"run {i:4d}: {row['outcome']:15s} faults={row['faults']} "
                      f"{','.join(row['modes'])}", flush=True)
                if row["outcome"] in ("wrong", "hang"):
                    print(f"          keys left: {row['keys_left']}; {row['error'][:400]}",
                          flush=True)
        finally:
            launcher.close()
            client.close()
    outcomes = [r["outcome"] for r in rows]
    summary = {
        "runs": len(rows), "seed": args.seed, "fault_rate": args.fault_rate,
        "width": args.width,
        "faults_injected": sum(r["faults"] for r in rows),
        "faults_by_kind": {k: sum(r["modes"].count(k) for r in rows)
                           for k in (*FAULTS, "sigterm")},
        "completed_correctly": outcomes.count("completed"),
        "failed_cleanly": outcomes.count("failed_cleanly"),
        "hangs": outcomes.count("hang"),
        "wrong": outcomes.count("wrong"),
        "data_lost": sum(r["lost"] for r in rows if "oom" not in r["modes"]),
        # records a store kept out of memory for the whole run could not take (not a loss of
        # the executor's: the run completed; the metrics writer could not write)
        "metrics_refused_by_full_store": sum(r["lost"] for r in rows if "oom" in r["modes"]),
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
