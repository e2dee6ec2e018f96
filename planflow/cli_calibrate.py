"""`planflow calibrate`: measure this machine (`local`) or a Ray cluster (`ray`) as a platform.

Wires the options to `runtime.calibrate` (`--launcher local`, the default) or
`runtime.ray_calibrate` (`--launcher ray [--ray-address ADDR] [--redis URL]`) and prints what
it measured beside what the platform assumed before (`local`: derived from the host's CPUs and
memory; `ray`: the shipped ray.toml), a table of the store's round trips by value size, and
where the platform file went; `--json` prints one object (`Calibration.to_json` or
`RayCalibration.to_json`, `written` naming the files). Progress goes to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from planflow.cli import JsonOpt, app, guard, print_json

if TYPE_CHECKING:
    from runtime.calibrate import Calibration
    from runtime.ray_calibrate import RayCalibration

CALIBRATE_LAUNCHERS = ("local", "ray")
"""Launchers whose workers calibrate can measure (the local pool: this machine; Ray's actors)."""

ROWS = (
    ("host CPUs", "host_cpus", "cpus"),
    ("host memory", "host_memory_mb", "mb"),
    ("cold start", "cold_start_s", "s"),
    ("warm start", "warm_start_s", "s"),
    ("store latency", "storage_latency_s", "s"),
    ("store bandwidth, one client", "storage_bandwidth_bps", "bps"),
    ("store throughput, all", "store_throughput_bps", "bps"),
    ("store time per request", "store_op_s", "s"),
    ("shared-memory bandwidth", "shm_bandwidth_bps", "bps"),
    ("concurrency limit", "concurrency_limit", "int"),
)
"""Platform fields shown measured beside assumed: label, field, unit."""

EXTRAS = (
    ("store requests/s, all", "store_requests_per_s"),
    ("store capacity, Redis alone", "store_server_bps"),
    ("pool start", "pool_start_s"),
    ("plan download", "plan_download_s"),
    ("fork", "fork_s"),
)
"""Measured figures that are not platform fields, shown below the platform's."""


@app.command("calibrate")
def calibrate_cmd(
    launcher: Annotated[
        str, typer.Option(help="Launcher whose workers are measured: local or ray.")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            metavar="ADDR",
            help="With --launcher ray: the cluster to join (default $RAY_ADDRESS, else a local "
            "Ray instance).",
        ),
    ] = None,
    redis: Annotated[
        str | None,
        typer.Option(
            "--redis",
            metavar="URL",
            help="With --launcher ray and a cluster address: a Redis every node reaches "
            "(default $PLANFLOW_REDIS_URL; none: an embedded one).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE.toml",
            help="Also write the platform file here (it is always cached for `local`/`ray`).",
        ),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Shorter probes, values up to 16 MB (a few seconds).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Measure this machine (CPUs, memory, start-ups, store, shared memory) as `local`, or a
    Ray cluster (configurations, start-ups, store) as `ray`."""

    def body() -> None:
        from planflow import api
        from planner.errors import UsageError

        if launcher not in CALIBRATE_LAUNCHERS:
            raise UsageError(
                f"--launcher {launcher}: calibrate measures the workers of "
                f"{', '.join(CALIBRATE_LAUNCHERS)}"
            )
        if launcher == "local" and (ray_address or redis):
            raise UsageError("--ray-address and --redis go with --launcher ray")
        result = api.calibrate(launcher=launcher, quick=quick, out=out, ray_address=ray_address,
                               redis_url=redis, progress=_progress)
        from runtime.calibrate import Calibration

        if as_json:
            print_json(result.to_json())
        elif isinstance(result, Calibration):
            _render(result)
        else:
            _render_ray(result)

    guard(body, as_json=as_json)


RAY_ROWS = (
    ("cold start (new actor)", "cold_start_s", "s"),
    ("warm start (pooled actor)", "warm_start_s", "s"),
    ("store latency, from a node", "storage_latency_s", "s"),
    ("store bandwidth, from a node", "storage_bandwidth_bps", "bps"),
    ("concurrency limit (CPUs)", "concurrency_limit", "int"),
    ("keep warm", "keep_warm_s", "s"),
)
"""Ray platform fields shown measured beside assumed (ray.toml): label, field, unit."""


def _render_ray(c: RayCalibration) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"the Ray cluster as 'ray' ({c.address}, {c.elapsed_s:.1f} s)")
    for col in ("figure", "measured", "assumed before"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    now, before = c.platform.to_dict(), c.assumed.to_dict()
    for label, name, unit in RAY_ROWS:
        table.add_row(label, _fmt(now.get(name), unit), _fmt(before.get(name), unit))
    table.add_row("plan download", _fmt(c.measured.get("plan_download_s"), "s"), "-")
    table.add_row("configurations", _configs(c.platform), _configs(c.assumed))
    console.print(table)
    nodes = Table(title="nodes")
    for col in ("node", "CPUs", "memory"):
        nodes.add_column(col, justify="right")
    for n in c.nodes:
        nodes.add_row(n.address, _fmt(n.cpus, "cpus"), _fmt(n.memory_mb, "mb"))
    console.print(nodes)
    for path in c.written:
        console.print(f"wrote {path}")


def _configs(platform: Any) -> str:
    return ", ".join(f"{c.memory_mb} MB/{c.cpus:g}" for c in platform.configs)


def _progress(message: str) -> None:
    print(f"calibrate: {message}", file=sys.stderr, flush=True)


def _render(c: Calibration) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"this machine as 'local' ({c.machine_key}, {c.elapsed_s:.1f} s)")
    for col in ("figure", "measured", "assumed before"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    now, before = c.platform.to_dict(), c.assumed.to_dict()
    for label, name, unit in ROWS:
        table.add_row(label, _fmt(now.get(name), unit), _fmt(before.get(name), unit))
    for label, name in EXTRAS:
        unit = "int" if name.endswith("_per_s") else "bps" if name.endswith("_bps") else "s"
        table.add_row(label, _fmt(c.measured.get(name), unit), "-")
    for q in c.quotas:
        table.add_row(
            f"CPU quota {q.requested_cpus:g}",
            f"{q.observed_cpus:.2f} ({q.enforcement}; no quota: {q.unlimited_cpus:.2f})",
            f"{q.requested_cpus:g} CPU",
        )
    console.print(table)
    sizes = Table(title="store round trips, one client")
    for col in ("value", "SET", "GET", "GET bandwidth", "repeats"):
        sizes.add_column(col, justify="right")
    for t in c.store_sizes:
        sizes.add_row(
            _fmt(t.nbytes, "bytes"),
            _fmt(t.set_s, "s"),
            _fmt(t.get_s, "s"),
            _fmt(t.get_bps, "bps"),
            str(t.repeats),
        )
    console.print(sizes)
    for path in c.written:
        console.print(f"wrote {path}")


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1e3:.3f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "bps":
        return f"{value / 1e9:.2f} GB/s" if value >= 1e9 else f"{value / 1e6:.0f} MB/s"
    if unit == "bytes":
        return f"{value >> 20} MB" if value >= 1 << 20 else f"{value >> 10} KB"
    if unit == "mb":
        return f"{value} MB"
    if unit == "cpus":
        return f"{value:g}"
    return f"{value:,.0f}" if isinstance(value, float) else str(value)
