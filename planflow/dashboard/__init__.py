"""The dashboard: watch a run live and analyse it afterwards in the browser; static reports.

`planflow dashboard [--redis URL] [--namespace NS] [--port P]` serves a local web app
(127.0.0.1 by default); `planflow run --dashboard` serves it beside the run; `planflow report
RUN_ID -o report.html` writes one self-contained file. Install with `planflow[dashboard]`
(starlette, uvicorn, plotly); nothing is fetched from the internet: plotly.js comes from the
plotly package.

Pages: runs (filter by workflow and strategy; live runs appear and finish without a reload),
run (the task graph in layers coloured by state and updated live, the critical path, a click
on a task for its details, planned vs observed Gantt by worker, where time went, a
per-function table), compare (one workflow's runs grouped by strategy).

Data flow, one direction, each module a step:

    Redis --source (sync reads, cached)--> RunData --analysis, states, layout--> numbers
          --live (async, incremental)---> server-sent events          --figures--> plotly JSON
                                                                       --views----> page JSON
    page JSON --app (Starlette API) or report (embedded)--> assets/dashboard.js draws it

Every key name comes from `runtime.keys` (a run's live keys) or `metadata.keys` (the metrics
store, which outlives runs: RunRecord, WorkerRecords, TaskRecords, the run's recorded plan), so
renaming keys cannot silently break the dashboard. Modules import starlette and uvicorn only
in `app` and `serve`: the report needs plotly alone.
"""
