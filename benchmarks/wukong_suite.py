"""WUKONG's benchmark suite, scaled to this machine: planflow vs Dask threaded, Dask distributed
and Ray, on the same Dask programs.

    python benchmarks/wukong_suite.py [--repeat 3] [--quick] [--only tr,gemm] [--engines ...]

The programs and their sizes are in `wukong_workloads.py` (tree reduction of 1,024 leaves,
TSQR, GEMM, SVD-compressed, a dataframe groupby, a bag word count), scaled to a 2-core / 24 GB
machine; the table says so. Engines, each with as many processes (or threads) as cores:

- planflow: the real `planflow` path: `planflow.compile(collection, platform="local")` (the
  planner's own default plan, every option at its default, predicted from the metrics that the
  earlier runs of this benchmark recorded) and `run_plan` with the local launcher (worker
  processes from a warm pool of at most as many processes as cores, `--pool-processes`) on an
  embedded Redis.
  `run_plan`'s defaults put values between workers in shared memory (`runtime.shm`: the local
  launcher's workers share the host, `RunSettings.same_host`; bound `shm_max_bytes`, by default
  a fraction of tmpfs's free space, recorded in each row), Redis carrying coordination only.
  Its time is compile + run (Dask's times include Dask's own optimisation); run alone is shown.
- dask-threaded: `dask.compute(scheduler="threads", num_workers=cores)`.
- dask-distributed: `LocalCluster(n_workers=cores, threads_per_worker=1, processes=True)`.
- ray: `ray.util.dask.ray_dask_get` on a new local instance, `ray.init(address="local",
  num_cpus=cores)`, when Ray is installed.
- planflow-host (`planflow[host_cpus=N]`): as planflow, planned on a platform file that
  extends `local` with `host_cpus` (the simulator's shared-host model), for comparison.

Each engine computes each workload once to warm up (its result is checked against
dask-threaded's), then `--repeat` times; we report the best and the spread of the wall time,
the peak memory (sum of the proportional set sizes, PSS, of every process of the engine:
client, Redis, pool and workers included, idle warm ones too, sampled every `SAMPLE_S`) and
the ratio to the best peer (best time of the fastest non-planflow engine; a planflow row above
1, or failed, is reported as losing).
Everything else on the machine adds noise: the JSON records the load average before and after.
Results go to benchmarks/results/wukong_suite.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one BLAS thread per worker, in every engine
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cloudpickle  # noqa: E402
import psutil  # noqa: E402
import wukong_workloads as wl  # noqa: E402

cloudpickle.register_pickle_by_value(wl)  # planflow's workers do not have benchmarks/ on path

RESULTS = ROOT / "benchmarks" / "results" / "wukong_suite.json"
NAMESPACE = "wukong"
SAMPLE_S = 0.1
"""How often the memory sampler reads every process of an engine."""
RUN_TIMEOUT_S = 300.0
"""Longest planflow run before it counts as failed (a run whose workers all wait for inputs
of workers still queued in the pool never ends; it fails here)."""
CORES = os.cpu_count() or 2


class PeakMemory:
    """Peak of the summed RSS of some process trees while a block runs (a sampling thread)."""

    def __init__(self, roots: Callable[[], Iterable[int]]) -> None:
        self.roots = roots
        self.peak_bytes = 0
        self._stop = threading.Event()

    def _total(self) -> int:
        seen: set[int] = set()
        total = 0
        for pid in self.roots():
            try:
                proc = psutil.Process(pid)
                family = [proc, *proc.children(recursive=True)]
            except psutil.Error:
                continue
            for p in family:
                if p.pid in seen:
                    continue
                seen.add(p.pid)
                total += _pss(p)
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._total())
            self._stop.wait(SAMPLE_S)

    def __enter__(self) -> PeakMemory:
        self.peak_bytes = self._total()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._total())


def _pss(proc: psutil.Process) -> int:
    """Proportional set size: a page shared by k processes counts 1/k in each (forked pool
    workers share most of their pages; summing RSS would count them once per worker)."""
    try:
        with open(f"/proc/{proc.pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    with contextlib.suppress(psutil.Error):
        return int(proc.memory_info().rss)
    return 0


def pool_pids(namespace: str) -> list[int]:
    """The local launcher's pool server of `namespace` (its workers are its children)."""
    return [p.info["pid"] for p in psutil.process_iter(["pid", "cmdline"])
            if "runtime.pool" in (p.info["cmdline"] or []) and namespace in p.info["cmdline"]]


# -- engines ----------------------------------------------------------------------------------

class Planflow:
    """planflow's real path; `platform` is `local` (the default plan) or a platform file."""

    def __init__(self, home: Path, platform: str = "local", name: str = "planflow",
                 processes: int = CORES, timeout_s: float = RUN_TIMEOUT_S) -> None:
        from runtime.embedded import EmbeddedRedis
        from runtime.local import LocalLauncher

        self.name, self.platform = name, platform
        self.server = EmbeddedRedis(data_dir=home / name, persistent=False).start()
        self.url = self.server.url
        self.launcher = LocalLauncher(self.url, NAMESPACE, shutdown_on_close=True,
                                      max_processes=processes)
        self.processes = processes
        self.timeout_s = timeout_s
        self.launcher.ensure_pool()
        self.last: dict[str, Any] = {}

    def pids(self) -> list[int]:
        return [os.getpid(), *([self.server.pid] if self.server.pid else []),
                *pool_pids(NAMESPACE)]  # one planflow engine at a time holds the namespace

    def compute(self, collection: Any) -> Any:
        import planflow
        from runtime import shm
        from runtime.client import run_plan

        t0 = time.perf_counter()
        plan = planflow.compile(collection, platform=self.platform, redis=self.url,
                                namespace=NAMESPACE)
        t1 = time.perf_counter()
        result = run_plan(plan, redis_url=self.url, namespace=NAMESPACE,
                          launcher=self.launcher, timeout_s=self.timeout_s)
        self.last = {"compile_s": t1 - t0, "run_s": time.perf_counter() - t1,
                     "tasks": len(plan.graph), "workers": len(plan.workers),
                     "predicted_makespan_s": plan.summary.makespan_s,
                     "history": plan.prediction_sources.get("history", 0),
                     "recovered": [str(r) for r in result.recovered],
                     "shm_max_bytes": shm.default_max_bytes(),
                     "pool_processes": self.processes}
        return result.result

    def close(self) -> None:
        self.launcher.close()
        self.server.stop()


class DaskThreaded:
    name = "dask-threaded"

    def pids(self) -> list[int]:
        return [os.getpid()]

    def compute(self, collection: Any) -> Any:
        import dask

        return dask.compute(collection, scheduler="threads", num_workers=CORES)[0]

    def close(self) -> None:
        return None


class DaskDistributed:
    name = "dask-distributed"

    def __init__(self) -> None:
        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(n_workers=CORES, threads_per_worker=1, processes=True,
                                    dashboard_address=None)
        self.client = Client(self.cluster)

    def pids(self) -> list[int]:
        return [os.getpid()]  # the cluster's nannies and workers are our children

    def compute(self, collection: Any) -> Any:
        import dask

        return dask.compute(collection, scheduler=self.client)[0]

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


class Ray:
    name = "ray"

    def __init__(self) -> None:
        import ray

        # address="local": a new instance of our own, never a cluster someone else started here
        ray.init(address="local", num_cpus=CORES, include_dashboard=False,
                 log_to_driver=False)

    def pids(self) -> list[int]:
        return [os.getpid()]

    def compute(self, collection: Any) -> Any:
        import dask
        from ray.util.dask import ray_dask_get

        return dask.compute(collection, scheduler=ray_dask_get)[0]

    def close(self) -> None:
        import ray

        ray.shutdown()


def host_platform(home: Path) -> str:
    """A platform file for this machine with the shared-host model on (README: `host_cpus`)."""
    path = home / "wukong-local-host.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'name = "local-host"\nextends = "local"\nhost_cpus = {CORES}\n')
    return str(path)


ENGINES = ("dask-threaded", "dask-distributed", "ray", "planflow", "planflow-host")
"""Engine names `--engines` accepts, in the order they run."""


def make_engines(home: Path, names: list[str], processes: int,
                 timeout_s: float) -> list[Callable[[], Any]]:
    """Engine factories, peers first (dask-threaded's results are the reference). Each engine
    is made when its turn comes and closed after it, so no engine idles beside another."""
    factories: dict[str, Callable[[], Any]] = {
        "dask-threaded": DaskThreaded, "dask-distributed": DaskDistributed, "ray": Ray,
        "planflow": lambda: Planflow(home, processes=processes, timeout_s=timeout_s),
        "planflow-host": lambda: Planflow(home, host_platform(home),
                                          f"planflow[host_cpus={CORES}]", processes, timeout_s)}
    if "ray" in names:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("ray is not installed: no ray rows", file=sys.stderr)
            names = [n for n in names if n != "ray"]
    return [factories[n] for n in ENGINES if n in names]


# -- the benchmark ----------------------------------------------------------------------------

def measure(engine: Any, name: str, scale: wl.Scale, repeat: int,
            reference: Any) -> tuple[dict[str, Any], Any]:
    """One engine on one workload; a failure is a row too (`error`), never a crash."""
    try:
        return _measure(engine, name, scale, repeat, reference)
    except Exception as err:
        message = f"{type(err).__name__}: {err}"
        print(f"  {name:<10} {engine.name:<22} FAILED {message[:200]}", file=sys.stderr)
        return {"workload": name, "engine": engine.name, "error": message, "best_s": None,
                "same_result": False}, None


def _measure(engine: Any, name: str, scale: wl.Scale, repeat: int,
             reference: Any) -> tuple[dict[str, Any], Any]:
    build = wl.WORKLOADS[name]
    first = engine.compute(build(scale))  # warm-up; with planflow it records metrics
    ok = True if reference is None else wl.same(name, first, reference)
    recovered = list(getattr(engine, "last", {}).get("recovered", ()))
    walls, peaks, details = [], [], []
    for _ in range(repeat):
        collection = build(scale)
        with PeakMemory(engine.pids) as mem:
            t0 = time.perf_counter()
            engine.compute(collection)
            walls.append(time.perf_counter() - t0)
        peaks.append(mem.peak_bytes)
        details.append(dict(getattr(engine, "last", {})))
    best = min(range(repeat), key=walls.__getitem__)
    row = {"workload": name, "engine": engine.name, "best_s": walls[best],
           "median_s": statistics.median(walls), "worst_s": max(walls), "runs_s": walls,
           "peak_mb": peaks[best] / 2**20, "same_result": ok, **details[best]}
    if not ok:
        row["difference"] = wl.difference(name, first, reference)
        row["first_run_recovered"] = recovered  # workers relaunched in the checked run
    return row, first


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each row's best time over the best time of the fastest peer (the non-planflow engines,
    other than itself). A planflow row that failed or is slower is losing."""
    for r in rows:
        peers = [p["best_s"] for p in rows if p["workload"] == r["workload"]
                 and p["engine"] != r["engine"] and not p["engine"].startswith("planflow")
                 and p["best_s"] is not None]
        ratio = r["best_s"] / min(peers) if peers and r["best_s"] is not None else None
        r["ratio_to_best_peer"] = ratio
        r["losing"] = r["engine"].startswith("planflow") and (
            r["best_s"] is None or (ratio is not None and ratio > 1.0))


def print_table(rows: list[dict[str, Any]], scale: wl.Scale, machine: dict[str, Any]) -> None:
    print(f"WUKONG's suite scaled to a {machine['cpus']}-core / {machine['memory_gb']:.0f} GB "
          "machine (WUKONG ran 200,000 x 1,000 TSQR and 10,000^2 GEMM/SVD on AWS Lambda); "
          f"load average {machine['load_before'][0]:.2f} (1 min) at start, "
          f"{machine['load_after'][0]:.2f} at end:")
    for name, text in scale.describe().items():
        print(f"  {name:<10} {text}")
    head = (f"{'workload':<10} {'engine':<22} {'best s':>8} {'median':>8} {'worst':>8} "
            f"{'peak MB':>8} {'x best peer':>11} {'same':>5}  planflow: compile / run s, "
            "workers")
    print(head)
    print("-" * len(head))
    for r in rows:
        if r["best_s"] is None:
            print(f"{r['workload']:<10} {r['engine']:<22} FAILED (LOSES): {r['error'][:120]}")
            continue
        ratio = r["ratio_to_best_peer"]
        mine = r["engine"].startswith("planflow")
        verdict = "" if ratio is None else f"{ratio:>10.2f}x" + (
            " LOSES" if mine and r["losing"] else "")
        extra = (f"  {r['compile_s']:.2f} / {r['run_s']:.2f}, {r['workers']} workers"
                 if "compile_s" in r else "")
        print(f"{r['workload']:<10} {r['engine']:<22} {r['best_s']:>8.3f} {r['median_s']:>8.3f} "
              f"{r['worst_s']:>8.3f} {r['peak_mb']:>8.0f} {verdict:<17} "
              f"{'yes' if r['same_result'] else 'NO':>4}{extra}")


def plain(value: Any) -> Any:
    """JSON for what `json` cannot encode: numpy scalars and arrays as plain numbers and lists,
    anything else as its str."""
    import numpy as np

    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    return str(value)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", default=",".join(wl.WORKLOADS),
                        help="comma-separated workloads")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"comma-separated, of {', '.join(ENGINES)} (planflow-host: planned "
                             "with host_cpus, the shared-host model); the first that runs gives "
                             "the reference results")
    parser.add_argument("--pool-processes", type=int, default=CORES,
                        help="most processes planflow's local pool may hold (default: as many "
                             "as the peers use, the cores; `planflow run` allows 512)")
    parser.add_argument("--timeout-s", type=float, default=RUN_TIMEOUT_S,
                        help="longest planflow run before its row fails")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--home", type=Path, default=Path(os.environ.get(
        "PLANFLOW_HOME", "~/.planflow")).expanduser(), help="planflow's data directory")
    args = parser.parse_args()
    os.environ["PLANFLOW_HOME"] = str(args.home)  # pool logs and the embedded data dir
    scale = wl.QUICK if args.quick else wl.FULL
    names = [n for n in args.only.split(",") if n]
    machine = {"cpus": CORES, "memory_gb": psutil.virtual_memory().total / 2**30,
               "python": platform.python_version(), "platform": platform.platform(),
               "load_before": os.getloadavg()}
    rows: list[dict[str, Any]] = []
    engines = make_engines(args.home, [e for e in args.engines.split(",") if e],
                           args.pool_processes, args.timeout_s)
    references: dict[str, Any] = {}
    for make in engines:
        try:
            engine = make()
        except Exception as err:  # a peer that cannot start is reported, not a crash
            print(f"  engine did not start: {type(err).__name__}: {err}", file=sys.stderr)
            continue
        try:
            for name in names:
                row, result = measure(engine, name, scale, args.repeat, references.get(name))
                references.setdefault(name, result)
                rows.append(row)
                if row["best_s"] is not None:
                    print(f"  {name:<10} {engine.name:<22} {row['best_s']:.3f} s",
                          file=sys.stderr)
        finally:
            engine.close()
    rows.sort(key=lambda r: (names.index(r["workload"]), r["engine"]))
    machine["load_after"] = os.getloadavg()
    add_ratios(rows)
    print_table(rows, scale, machine)
    import dask

    doc = {"machine": machine, "commit": git_commit(), "dask": dask.__version__,
           "repeat": args.repeat, "quick": args.quick, "scale": scale.describe(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=plain))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
