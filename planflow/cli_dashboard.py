"""`planflow dashboard`, `planflow report`, and the dashboard beside `planflow run --dashboard`.

The dashboard reads the same Redis as runs and compiles: `--redis`, else `PLANFLOW_REDIS_URL`,
else the embedded store of `$PLANFLOW_HOME`, which the dashboard joins (starting it when no one
else has) for as long as it serves, so runs started meanwhile in other terminals share it and
appear live. The web stack (`planflow[dashboard]`) is imported only by these commands.
"""

from __future__ import annotations

import contextlib
import os
import sys
import webbrowser
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from planflow.cli import JsonOpt, app, guard, print_json
from planner.errors import UsageError

RedisOpt = Annotated[str | None, typer.Option(
    "--redis", metavar="URL",
    help="Redis URL (else PLANFLOW_REDIS_URL, else the embedded store).")]
NamespaceOpt = Annotated[str, typer.Option(metavar="NS", help="Key namespace of the runs.")]

END_GRACE_S = 5.0
"""After a run with --dashboard: longest wait for open live pages to get the run's final view."""


@app.command("dashboard", rich_help_panel="Watch and share")
def dashboard_cmd(
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "planflow",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on (0: any free "
                                      "one).")] = 8765,
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Address to listen on. The "
                                      "dashboard has no login: keep 127.0.0.1 unless the "
                                      "network is yours.")] = "127.0.0.1",
) -> None:
    """Serve the dashboard: runs, a live view of running ones, and post-run analysis."""

    def body() -> None:
        from planflow.dashboard.serve import free_port, require_stack, serve
        from planflow.stores import redis_for_metrics

        require_stack()
        chosen = free_port(host, port)
        with redis_for_metrics(redis, create=True) as url:
            assert url is not None  # create=True always yields a server
            application = _app(url, namespace)
            typer.echo(f"planflow dashboard: http://{host}:{chosen}/ (namespace {namespace}); "
                       "Ctrl-C to stop", err=True)
            serve(application, host, chosen)

    guard(body)


@app.command("report", rich_help_panel="Watch and share")
def report_cmd(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run (dag id).")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE.html",
                                      help="Where to write the report.")] = Path("report.html"),
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "planflow",
    as_json: JsonOpt = False,
) -> None:
    """Write one self-contained HTML file with a run's graph, timeline, pie and tables."""

    def body() -> None:
        from planflow.dashboard.report import write_report
        from planflow.dashboard.source import RunSource
        from planflow.stores import redis_for_metrics

        with redis_for_metrics(redis) as url:
            if url is None:
                raise UsageError(f"no run {run_id}: no metrics have been recorded yet")
            source = RunSource(url, namespace)
            try:
                path = write_report(source, run_id, out)
            finally:
                source.close()
        if as_json:
            print_json({"run_id": run_id, "report": str(path),
                        "bytes": path.stat().st_size})
        else:
            typer.echo(f"wrote {path}")

    guard(body)


@contextlib.contextmanager
def dashboard_for_run(enabled: bool, redis: str | None, namespace: str,
                      inline: bool = False) -> Iterator[str | None]:
    """For `planflow run --dashboard`: the Redis URL the run must use (the one the dashboard
    reads; `redis` as given when disabled) while a dashboard serves on a thread. When the run
    is over, the server waits (at most `END_GRACE_S`) until every open live page has been
    told so and has fetched the run's final view, then stops: the page keeps showing it, and
    `planflow dashboard` serves it again."""
    if not enabled:
        yield redis
        return
    if inline:
        raise UsageError("--dashboard watches the decentralized executor; drop --inline "
                         "(the inline executor keeps no state in Redis to show)")
    from planflow.dashboard.serve import (
        DEFAULT_HOST,
        DEFAULT_PORT,
        BackgroundServer,
        free_port,
        require_stack,
    )
    from planflow.stores import redis_for_metrics

    require_stack()
    try:
        port = free_port(DEFAULT_HOST, DEFAULT_PORT)
    except UsageError:
        port = free_port(DEFAULT_HOST, 0)
    with redis_for_metrics(redis, create=True) as url:
        assert url is not None
        server = BackgroundServer(_app(url, namespace), DEFAULT_HOST, port).start()
        link = f"{server.url}/latest"
        typer.echo(f"dashboard of this run: {link}", err=True)
        if os.environ.get("DISPLAY") or sys.platform in ("darwin", "win32"):
            webbrowser.open(link)
        try:
            yield url
        finally:
            server.stop(grace_s=END_GRACE_S)
            typer.echo(f"dashboard stopped; `planflow dashboard --namespace {namespace}` "
                       "shows the run again", err=True)


def _app(url: str, namespace: str) -> object:
    from planflow.dashboard.app import create_app

    return create_app(url, namespace)
