"""The dashboard's web app (Starlette, an ASGI app; `planflow dashboard` serves it with uvicorn).

| route                                  | returns                                              |
|----------------------------------------|------------------------------------------------------|
| `GET /`                                | runs page (filter by workflow and strategy)          |
| `GET /runs/{run_id}`                   | run page: graph, Gantt, pie, per-function table      |
| `GET /latest`                          | redirect: the newest live run, else the newest run   |
| `GET /compare?workflow=W`              | planner comparison page                              |
| `GET /static/{name}`                   | dashboard.js, dashboard.css, plotly.min.js (package) |
| `GET /api/runs?workflow=&strategy=`    | `views.runs_view`                                    |
| `GET /api/runs/{run_id}`               | `views.run_view`                                     |
| `GET /api/runs/{run_id}/tasks/{task}`  | `analysis.task_detail`                               |
| `GET /api/runs/{run_id}/events`        | server-sent events of a live run (`live`)            |
| `GET /api/events`                      | server-sent events: runs started or finished         |
| `GET /api/compare?workflow=W`          | `views.compare_view`                                 |
| `GET /api/health`                      | namespace and Redis URL (password redacted)          |

Errors are JSON `{"error": message}`: 404 for a run or task the namespace does not know, 503
when Redis cannot be read. Reads are synchronous (redis-py) and run in Starlette's thread
pool; the event streams use redis.asyncio, one connection pool for the app.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from metadata.connect import async_client
from metadata.errors import MetadataError, redact_url
from planflow.dashboard import analysis, pages, views
from planflow.dashboard.live import LiveFeed, run_events, runs_events
from planflow.dashboard.source import READ_OUTAGE_S, RunSource, UnknownRun, check_run_id
from runtime.errors import StoreError

STATIC_TYPES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css",
                "plotly.min.js": "text/javascript"}
"""What /static/ serves, with its content type."""

STATIC_MAX_AGE_S = 3600
"""Cache lifetime the browser may keep static assets for."""


def create_app(url: str, namespace: str = "planflow") -> Starlette:
    """The dashboard app over the Redis at `url`, showing the runs of `namespace`."""
    source = RunSource(url, namespace)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.aredis = async_client(url, outage_s=READ_OUTAGE_S)  # the one factory
        try:
            yield
        finally:
            close = getattr(app.state.aredis, "aclose", None) or app.state.aredis.close
            await close()
            source.close()

    def html_page(kind: str, title: Callable[[Request], str]) -> Callable[..., Awaitable[Any]]:
        async def endpoint(request: Request) -> Response:
            run_id = request.path_params.get("run_id", "")
            return HTMLResponse(pages.page(kind, title(request), run_id=run_id,
                                           namespace=namespace))
        return endpoint

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_TYPES:
            return JSONResponse({"error": f"no static file {name!r}"}, 404)
        text = pages.plotly_js() if name == "plotly.min.js" else pages.asset(name)
        return Response(text, media_type=STATIC_TYPES[name],
                        headers={"Cache-Control": f"max-age={STATIC_MAX_AGE_S}"})

    async def api_runs(request: Request) -> Response:
        q = request.query_params
        rows = await _read(source.runs)
        return JSONResponse(views.runs_view(rows, q.get("workflow"), q.get("strategy")))

    async def api_run(request: Request) -> Response:
        data = await _read(source.run, request.path_params["run_id"])
        return JSONResponse(await run_in_threadpool(views.run_view, data))

    async def api_task(request: Request) -> Response:
        run_id, task_id = request.path_params["run_id"], request.path_params["task_id"]
        data = await _read(source.run, run_id)
        detail = await run_in_threadpool(analysis.task_detail, data, task_id)
        if detail is None:
            raise UnknownRun(f"run {run_id} has no task {task_id!r}")
        return JSONResponse(detail)

    async def api_run_events(request: Request) -> Response:
        data = await _read(source.run, check_run_id(request.path_params["run_id"]))
        feed = LiveFeed(request.app.state.aredis, namespace, data.run_id, data.doc, data.t0)

        async def final_view() -> dict[str, Any]:
            return await _read(lambda: views.run_view(source.run(data.run_id)))

        return StreamingResponse(_counted(request.app, run_events(feed, final_view)),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    async def api_events(request: Request) -> Response:
        return StreamingResponse(runs_events(request.app.state.aredis, namespace),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    async def api_compare(request: Request) -> Response:
        workflow = request.query_params.get("workflow")
        view = await _read(_compare, source, workflow)
        return JSONResponse(view)

    async def latest(request: Request) -> Response:
        """The newest live run's page, else the newest run's, else the runs page."""
        rows = await _read(source.runs)
        live = [r for r in rows if r.status == "running"]
        chosen = (live or rows or [None])[0]
        return RedirectResponse(f"/runs/{chosen.run_id}" if chosen else "/", 307)

    async def api_health(request: Request) -> Response:
        return JSONResponse({"ok": True, "namespace": namespace, "redis": redact_url(url)})

    routes = [
        Route("/", html_page("runs", lambda r: f"planflow runs · {namespace}")),
        Route("/runs/{run_id}", html_page("run", lambda r: r.path_params["run_id"])),
        Route("/latest", latest),
        Route("/compare", html_page("compare", lambda r: "planflow · compare strategies")),
        Route("/static/{name}", static),
        Route("/api/runs", api_runs),
        Route("/api/runs/{run_id}", api_run),
        Route("/api/runs/{run_id}/tasks/{task_id:path}", api_task),
        Route("/api/runs/{run_id}/events", api_run_events),
        Route("/api/events", api_events),
        Route("/api/compare", api_compare),
        Route("/api/health", api_health),
    ]
    handlers: dict[Any, Any] = {UnknownRun: _not_found, StoreError: _unavailable}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)


async def _counted(app: Starlette, events: AsyncIterator[str]) -> AsyncIterator[str]:
    """`events`, counted in `app.state.live_streams` while they flow (`serve` waits for them
    to end before it stops beside a run)."""
    app.state.live_streams = getattr(app.state, "live_streams", 0) + 1
    try:
        async for item in events:
            yield item
    finally:
        app.state.live_streams -= 1


async def _read(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` on the thread pool; Redis and metrics errors become StoreError."""
    try:
        return await run_in_threadpool(fn, *args)
    except (MetadataError, redis.RedisError) as err:
        raise StoreError(f"dashboard: reading Redis failed: {err}") from err


def _compare(source: RunSource, workflow: str | None) -> dict[str, Any]:
    records = source.run_records()
    _, mine = views.compared_runs(records, workflow)
    summaries = source.store.plan_summaries(r.run_id for r in mine)
    gb_s = {r.run_id: analysis.observed_gb_s(source.worker_records(r.run_id)) for r in mine}
    return views.compare_view(records, workflow, summaries, gb_s)


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, 404)


async def _unavailable(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, 503)
