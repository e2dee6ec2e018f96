"""The compiler: user program -> task graph IR -> passes -> Plan.

The IR: `trace` (@task/@workflow) -> `graph` (TaskGraph, frozen) -> `plan` (Plan, frozen, and
its `.plan` file). `wfformat` reads WfCommons traces into the same IR, `dask_graph` Dask
collections (with `dask_input`, `dask_names`, `dask_args`).

The passes, in order (`compiler.compile_graph` runs them in one visible sequence):

1. predict    `predict`: durations at every configuration, feasibility, output/edge bytes
2. place      `placement`, `target`: workers (clustering / WUKONG rule / one per task; on a
              host-bound platform one worker, lanes, packed clustering)
3. optimize   `optimize`: delayed I/O, pre-load
4. baseline   `target`: best configuration everywhere, pre-warm; the target makespan
5. configure  `downgrade` (critical-path) or `baselines` (uniform, wukong, octoflows)
6. pre-warm   `optimize.prewarm`, re-timed on the configured timeline
7. simulate   the final plan; `explain` turns it into a Plan with reasons

`assignment` holds the numeric working state the passes hand on; `whatif` re-simulates a plan
under changed configurations or another platform (`planflow simulate`).
"""
