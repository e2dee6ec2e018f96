"""`planflow compile` and `planflow simulate`.

Both only wire options to `planflow.api` and print what it returns: a rich explanation for
people, or with `--json` exactly one JSON object (`compile`: the plan's JSON plus `plan_file`
and `prediction_sources`; `simulate`: the what-if report). Heavy modules load inside the
commands, so `planflow --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from planflow.cli import JsonOpt, ParamOpt, app, guard, params_of, print_json
from planner.options import DEFAULT_PLATFORM, DEFAULT_ROUNDS, DEFAULT_STRATEGY, STRATEGIES

StrategyOpt = Annotated[str, typer.Option(
    help=f"Planning strategy: {' | '.join(STRATEGIES)}.")]
PlatformOpt = Annotated[str, typer.Option(
    help="Platform: a built-in name (lambda, local, ray) or a platform TOML file.")]
RedisOpt = Annotated[str | None, typer.Option(
    "--redis", help="Redis URL holding the metrics of earlier runs (else PLANFLOW_REDIS_URL, "
                    "else the embedded store).")]
NamespaceOpt = Annotated[str, typer.Option(help="Metrics key namespace.")]


@app.command("compile")
def compile_cmd(
    target: Annotated[str, typer.Argument(help="MODULE.py[:WORKFLOW] or a WfFormat .json file")],
    param: ParamOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Plan file to write.")] = None,
    strategy: StrategyOpt = DEFAULT_STRATEGY,
    platform: PlatformOpt = DEFAULT_PLATFORM,
    memory_mb: Annotated[int | None, typer.Option(
        "--memory-mb", help="One configuration for uniform/wukong (MB).")] = None,
    slowdown: Annotated[float, typer.Option(
        help="Allowed makespan increase over the best-everywhere plan, as a fraction.")] = 0.0,
    rounds: Annotated[int, typer.Option(help="Most rounds of the downgrade loop.")]
    = DEFAULT_ROUNDS,
    deadline_s: Annotated[float | None, typer.Option(
        "--deadline-s", help="Cheapest plan whose makespan is at most this (seconds).")] = None,
    quantile: Annotated[float | None, typer.Option(
        help="Plan on this quantile of predicted durations (e.g. 0.9), not the median.")] = None,
    clustering: Annotated[bool, typer.Option(
        "--clustering/--no-clustering", help="Cluster chains, fan-outs and fan-ins.")] = True,
    delayed_io: Annotated[bool, typer.Option(
        "--delayed-io/--no-delayed-io", help="Skip uploads only local tasks read.")] = True,
    prewarm: Annotated[bool, typer.Option(
        "--prewarm/--no-prewarm", help="Start workers before their inputs arrive.")] = True,
    preload: Annotated[bool, typer.Option(
        "--preload/--no-preload", help="Fetch remote inputs as soon as they exist.")] = True,
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "planflow",
    as_json: JsonOpt = False,
) -> None:
    """Compile a workflow into an explained plan file."""
    from planflow import api, render

    options: dict[str, Any] = {
        "strategy": strategy, "platform": platform, "memory_mb": memory_mb,
        "slowdown": slowdown, "rounds": rounds, "deadline_s": deadline_s, "quantile": quantile,
        "clustering": clustering, "delayed_io": delayed_io, "prewarm": prewarm,
        "preload": preload}

    def body() -> None:
        plan = api.compile(target, params_of(param), redis=redis, namespace=namespace, **options)
        path = plan.save(out or _default_plan_path(target, plan.workflow))
        if as_json:
            print_json({**plan.to_json(), "plan_file": str(path),
                        "prediction_sources": dict(plan.prediction_sources)})
        else:
            render.plan_summary(plan, path)

    guard(body, as_json=as_json)


@app.command("simulate")
def simulate_cmd(
    target: Annotated[str, typer.Argument(
        help="A .plan file, MODULE.py[:WORKFLOW] or a WfFormat .json file")],
    param: ParamOpt = None,
    platform: Annotated[str | None, typer.Option(
        help="Simulate on this platform (name or TOML file); default: the plan's.")] = None,
    all_memory_mb: Annotated[int | None, typer.Option(
        "--all", metavar="MEMORY_MB", help="Every worker on this configuration.")] = None,
    set_memory: Annotated[list[str] | None, typer.Option(
        "--set", metavar="PATTERN=MEMORY_MB",
        help="Workers of tasks whose id or function matches the glob (repeatable).")] = None,
    width: Annotated[list[str] | None, typer.Option(
        "--width", metavar="NAME=N",
        help="Dynamic fan-out NAME (a planflow.map task id) at width N (repeatable).")] = None,
    samples: Annotated[int, typer.Option(
        help="Also draw N duration samples: makespan and cost p50/p90/p99.")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed of --samples.")] = 0,
    gantt: Annotated[Path | None, typer.Option(
        metavar="FILE.png", help="Draw the scenario's timeline.")] = None,
    strategy: StrategyOpt = DEFAULT_STRATEGY,
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "planflow",
    as_json: JsonOpt = False,
) -> None:
    """What-if: simulate a plan as compiled and under changed configurations or platform."""
    from planflow import api, render

    def body() -> None:
        compile_opts = {} if target.endswith(".plan") else {"strategy": strategy}
        report = api.simulate(target, params_of(param), platform=platform,
                              all_memory_mb=all_memory_mb, set_memory=set_memory or [],
                              samples=samples, seed=seed, gantt=gantt, redis=redis,
                              namespace=namespace, widths=width or [], **compile_opts)
        if as_json:
            print_json(report.to_json())
        else:
            render.what_if(report)

    guard(body, as_json=as_json)


def _default_plan_path(target: str, workflow: str) -> Path:
    from planner.loader import split_target

    path, _ = split_target(target)
    return Path(f"{path.stem if path.suffix == '.json' else workflow}.plan")
