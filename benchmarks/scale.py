"""Scale: the whole `planflow` command on no-op workflows of 100 to 100,000 tasks.

    python benchmarks/scale.py [--tasks 100,1000,10000,100000] [--shapes fan_in,tree] [--out F]

Shapes (benchmarks/shapes.py): a fan-in, a fan-out/fan-in, a binary tree and chains of 4 into
one sink, each about `tasks` tasks, every task a no-op, so time is the product's overhead. Each
(shape, size) runs as users run it, in a fresh `$PLANFLOW_HOME` (the embedded Redis, the local
launcher, the default platform): `planflow compile MODULE:SHAPE -p tasks=N -o F.plan`, then
`planflow run F.plan --json`, each a subprocess timed from start to exit, with the planner's
own plan. The benchmark holds the embedded server of that home itself (the commands join it),
so it can read the server's counters:

- compile s, run s (the whole `run` command), observed makespan (the run's own figure),
  per-task overhead = run s / tasks;
- Redis commands per task (INFO commandstats delta over the run, metric records included);
- peak RSS of the client, of the pool server, of the largest worker process and of all worker
  processes together, and of redis-server (sampled every 0.1 s);
- history growth: bytes the home's append-only file grew by the run once compacted, as the last
  user of the store compacts it (`runtime.embedded`), i.e. what a run leaves on disk;
- the peer: the same task graph through Dask threaded (`dask.threaded.get`, as many threads as
  CPUs, in this process, timed from graph conversion to result: no interpreter start, no store,
  no records), and `vs dask`: planflow's makespan over it, then its whole `run` command over it.

Every result is checked. Prints a table, writes JSON to benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import redis  # noqa: E402

from benchmarks.shapes import EXPECTED  # noqa: E402
from runtime.client import embedded_store  # noqa: E402
from runtime.defaults import DATA_DIR_ENV, REDIS_URL_ENV  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
SHAPES_MODULE = ROOT / "benchmarks" / "shapes.py"
SAMPLE_S = 0.1
"""How often process memory is sampled."""
COMMAND_TIMEOUT_S = 3600.0
"""Longest one command may take before the benchmark gives up on it (and says so)."""
MB = 1 << 20


@dataclass
class Peaks:
    """Peak resident memory (bytes) of the run's processes."""

    client: int = 0
    pool: int = 0
    worker_max: int = 0
    workers_total: int = 0
    redis: int = 0


@dataclass
class Row:
    shape: str
    tasks: int
    workers: int
    compile_s: float
    run_s: float
    observed_makespan_s: float
    predicted_makespan_s: float
    per_task_us: float
    redis_commands_per_task: float
    history_growth_bytes: int
    ok: bool
    error: str = ""
    peaks: Peaks = field(default_factory=Peaks)
    dask_threaded_s: float | None = None
    """The same graph through Dask threaded (None: Dask not installed or --no-peer)."""


class Sampler:
    """Samples the RSS of a command's process tree, its pool and workers, and redis-server."""

    def __init__(self, client_pid: int, home: Path, redis_pid: int) -> None:
        self.client_pid, self.home, self.redis_pid = client_pid, str(home), redis_pid
        self.peaks = Peaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> Peaks:
        self._stop.set()
        self._thread.join()
        return self.peaks

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            p = self.peaks
            p.client = max(p.client, _rss(self.client_pid))
            p.redis = max(p.redis, _rss(self.redis_pid))
            pool, workers = self._pool_tree()
            p.pool = max(p.pool, pool)
            if workers:
                p.worker_max = max(p.worker_max, max(workers))
                p.workers_total = max(p.workers_total, sum(workers))

    def _pool_tree(self) -> tuple[int, list[int]]:
        """RSS of the pool servers of this home and of each of their worker processes."""
        pool, workers = 0, []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if "runtime.pool" not in (proc.info["cmdline"] or []):
                    continue
                if proc.environ().get(DATA_DIR_ENV) != self.home:
                    continue
                if proc.parent() is not None and "runtime.pool" in (proc.parent().cmdline()):
                    workers.append(proc.memory_info().rss)
                else:
                    pool += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return pool, workers


def _rss(pid: int) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def planflow(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], float]:
    proc = subprocess.Popen([sys.executable, "-m", "planflow", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    return proc, time.perf_counter()


def total_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


def compacted_size(client: redis.Redis, home: Path) -> int:
    """The append-only file's size after a rewrite (what the last user leaves on disk)."""
    client.bgrewriteaof()
    while True:
        info = client.info("persistence")
        if not int(info["aof_rewrite_in_progress"]) and not int(info["aof_rewrite_scheduled"]):
            break
        time.sleep(0.05)
    files = [home / "planflow.aof", *(home / "appendonlydir").glob("*")]
    return sum(f.stat().st_size for f in files if f.is_file())


def measure(shape: str, n: int) -> Row:
    home = Path(tempfile.mkdtemp(prefix=f"pf-scale-{shape}-{n}-"))
    env = {k: v for k, v in os.environ.items() if k != REDIS_URL_ENV}
    env.update({DATA_DIR_ENV: str(home), "PYTHONPATH": str(ROOT)})
    plan_file = home / f"{shape}.plan"
    with embedded_store(home) as server:
        client = redis.Redis.from_url(server.url)
        proc, t0 = planflow(["compile", f"{SHAPES_MODULE}:{shape}", "-p", f"tasks={n}",
                             "--platform", "local", "-o", str(plan_file), "--json"], env)
        out, err = proc.communicate(timeout=COMMAND_TIMEOUT_S)
        compile_s = time.perf_counter() - t0
        if proc.returncode:
            return Row(shape, n, 0, compile_s, 0, 0, 0, 0, 0, 0, False, err.strip()[-300:])
        plan = json.loads(out)
        tasks, workers = len(plan["tasks"]), len(plan["workers"])
        history_before = compacted_size(client, home)
        calls_before = total_calls(client)
        proc, t0 = planflow(["run", str(plan_file), "--json"], env)
        sampler = Sampler(proc.pid, home, int(server.pid or 0))
        out, err = proc.communicate(timeout=COMMAND_TIMEOUT_S)
        run_s = time.perf_counter() - t0
        peaks = sampler.stop()
        calls = total_calls(client) - calls_before
        growth = compacted_size(client, home) - history_before
        client.close()
    doc = json.loads(out) if out.strip() else {}
    ok = proc.returncode == 0 and doc.get("result") == EXPECTED[shape](n)
    error = "" if ok else (doc.get("error", {}).get("message") or err.strip()[-300:]
                           or f"wrong result {doc.get('result')!r}")
    return Row(shape, tasks, workers, compile_s, run_s, float(doc.get("observed_makespan_s", 0)),
               float(doc.get("makespan_s", 0)), run_s / tasks * 1e6, calls / tasks, growth, ok,
               error, peaks)


def dask_threaded_s(shape: str, n: int) -> float | None:
    """Seconds Dask threaded takes for the shape's graph (module docstring); None without Dask."""
    try:
        import dask.threaded
    except ImportError:
        return None
    from benchmarks import shapes
    from benchmarks.overhead_engines import to_dask
    from planner.loader import trace_workflow

    graph = trace_workflow(getattr(shapes, shape), {"tasks": n})
    t0 = time.perf_counter()
    result = dask.threaded.get(to_dask(graph), graph.sink, num_workers=os.cpu_count() or 1)
    elapsed = time.perf_counter() - t0
    if result != EXPECTED[shape](n):
        raise SystemExit(f"dask threaded: wrong result for {shape} {n}: {result!r}")
    return elapsed


def print_table(rows: list[Row]) -> None:
    head = (f"{'shape':<8}{'tasks':>8}{'workers':>8}{'compile s':>10}{'run s':>8}"
            f"{'makespan':>9}{'us/task':>9}{'cmd/task':>9}{'client MB':>10}{'pool MB':>8}"
            f"{'wk max MB':>10}{'wk sum MB':>10}{'redis MB':>9}{'hist KB':>8}{'dask s':>8}"
            f"{'vs dask':>13}  ok")
    print(head)
    for r in rows:
        p = r.peaks
        print(f"{r.shape:<8}{r.tasks:>8}{r.workers:>8}{r.compile_s:>10.2f}{r.run_s:>8.2f}"
              f"{r.observed_makespan_s:>9.2f}{r.per_task_us:>9.0f}"
              f"{r.redis_commands_per_task:>9.2f}{p.client / MB:>10.0f}{p.pool / MB:>8.0f}"
              f"{p.worker_max / MB:>10.0f}{p.workers_total / MB:>10.0f}{p.redis / MB:>9.0f}"
              f"{r.history_growth_bytes / 1024:>8.0f}{_peer(r)}  "
              f"{'yes' if r.ok else 'NO: ' + r.error}")


def _peer(r: Row) -> str:
    d = r.dask_threaded_s
    if not d:
        return f"{'-':>8}{'-':>13}"
    return f"{d:>8.2f}{f'{r.observed_makespan_s / d:.2f}/{r.run_s / d:.2f}x':>13}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="100,1000,10000,100000")
    parser.add_argument("--shapes", default="fan_in,fan_out,tree,chains")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-peer", action="store_true", help="skip the Dask threaded peer")
    args = parser.parse_args()
    sizes = [int(x) for x in args.tasks.split(",")]
    shapes = args.shapes.split(",")
    print(f"planflow scale benchmark on {os.cpu_count()} CPUs, {platform.python_version()}; "
          "each row: `planflow compile` then `planflow run` in a fresh PLANFLOW_HOME")
    rows = []
    for n in sizes:
        for shape in shapes:
            row = measure(shape, n)
            if not args.no_peer:
                row.dask_threaded_s = dask_threaded_s(shape, n)
            rows.append(row)
            print_table([row])
    print()
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg": os.getloadavg()},
        "rows": [asdict(r) for r in rows]}, indent=2))
    print(f"wrote {args.out}")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
