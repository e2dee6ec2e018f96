"""Platform model and discrete-event simulation of a plan (makespan, cost).

This package imports no other planflow package: it works on a numeric model (`SimInput`: arrays
of durations, sizes, edges, placements) that the planner builds, and a `Platform` (prices,
start-up, transfer, concurrency). `simulate(inp, platform)` returns a `SimResult`.

Semantics (what `simulate` implements, exactly)
================================================

Time 0 is the moment the run is submitted. Tasks 0..n-1 are numbered in a topological order;
every edge goes from a lower to a higher index; the sink is task n-1 and every other task has a
consumer. A worker runs its tasks one at a time in ascending index ("plan order").

Workers.
  * A worker is *requested* when its first task's inputs are all available, or at
    `worker_prewarm_at_s` if that is earlier (pre-warm).
  * The concurrency limit bounds the workers alive at once. A request beyond the limit waits in a
    FIFO queue ordered by (request time, worker index) and starts when a worker stops.
  * On *start* (time s) the worker takes a warm container of the same configuration if one went
    idle at a time >= s - keep_warm_s (the oldest such container first; each container serves
    one worker at a time), paying `warm_start(config)`; otherwise it pays `cold_start(config)`.
    It is *ready* at s + start-up.
  * It *stops* when its last task is done (upload included); its container then idles, warm for
    keep_warm_s, and its concurrency slot is free.
  * Billing runs from start (start-up included, as Lambda bills its init phase) to stop, idle
    waiting included, rounded up to `billing_granularity_s`. cost_usd = sum of memory_GB x
    billed_s x price_per_gb_s + one invocation per worker x price_per_invocation; gb_s is the sum
    of memory_GB x billed_s. Memory GB = MB / 1024.

Tasks, on worker k, in plan order; `prev` = when the previous task on k is done (k's ready time
for its first task). An input is *remote* if its producer runs on another worker; inputs produced
on the same worker are free (the producer already ran, by plan order). L = storage latency,
BW = storage bandwidth.
  * ready  = max(prev, availability of every remote input). A remote input is available when its
    producer's upload ends.
  * Without pre-load, the task fetches its remote inputs and its `storage_bytes` when ready, in
    parallel, as one batch sharing the worker's bandwidth: start = ready + L + bytes/BW (no fetch,
    no time, when it has neither).
  * With pre-load (`worker_preload[k]`), each remote input is requested as soon as it is available
    and the worker is ready, even while earlier tasks run; `storage_bytes` are requested when the
    worker reaches the task (at prev). Requests go through the worker's download link: a request
    made at t transfers its bytes from max(t + L, end of the link's previous transfer), FIFO by
    request time, ties by (task index, producer index) with storage reads first. Latencies
    overlap; bytes share the bandwidth serially (equal to fair sharing for the last finisher).
    start = max(prev, end of every download of the task).
  * finish = start + duration_s, unless the platform has `host_cpus` (below). The output is
    uploaded (L + output_bytes/BW, occupying the worker) if a consumer runs on another worker, or
    the task is the sink, or its delayed_io is False. done = finish + upload (or finish). The
    next task's prev is done.
  * Each remote edge is downloaded on its own (edge_bytes); the simulator does not cache an output
    that two tasks of one worker both read. Uploads do not share the download link.
  * makespan = done of the sink (every task is an ancestor of the sink, so this is the last event).

Shared host CPUs (only when `Platform.host_cpus` is set: on `local`, not on `lambda`). Every worker
runs on one machine of host_cpus CPUs, where moving data is CPU work too ((de)serialising and
copying it through the store). A task's host work is its fetch (unless pre-loaded), its
`duration_s` (its time alone on that machine at its worker's configuration) and its upload, one
after another; a worker's start-up (cold or warm start: a process start, imports, the plan
download) is host work too, of demand min(1, its configuration's CPUs), and the worker is ready
when it is done. Jobs doing host work at once share the CPUs (waiting uses none): a task
demands min(its `cpu_demand`, host_cpus) - the CPUs it keeps busy, by default its configuration's -
(demands are grouped to 0.01 CPU) and when demands add up to more than host_cpus the CPUs are
water-filled (max-min fair, each capped by its demand, as CFS shares cores among cgroups with
quotas); a job given s CPUs of demand d progresses at rate s/d. A task's host work begins
when it is ready (pre-loaded: at its start) and each part takes its share of the stretched
time, so start, finish and done are stretched alike; the timeline uses the stretched fetch and
length, so critical path and slack hold the sharing fixed.
`simulator.host` implements it (one virtual clock per demand class).
A host job's completion comes before any other event at the same time; among completions at
one time, tasks (by index) before start-ups (by worker).

Value paths (only when `Platform.shm_bandwidth_bps` is set: workers on one host). As the runtime
sends values (`runtime.values`), a task's output of at least `simulator.store.SHM_MIN_BYTES`
(256 KiB) goes through shared memory: the upload is L + output_bytes/shm_bandwidth_bps (the file
is written, a reference stored) and a consumer's fetch of it moves edge_bytes/shm_bandwidth_bps
(plus the reference's request); smaller outputs and storage reads go through the store at BW.
So everywhere above "bytes/BW" reads: store-path bytes/BW + shared-memory bytes/shm bandwidth.
The run's shared-memory bound (past which values spill into Redis) is taken as never reached.

The store as one serial server (only when `Platform.store_throughput_bps` is set; op =
`store_op_s`, TP = store_throughput_bps). Every transfer is one job of the one store, which
serves jobs one at a time in request order (by request time, ties by the heap key below): a job
requested at t reaches the store at a = t + L (pre-load downloads: when the worker's link
begins them, as above), begins at max(a, end of the store's previous job) and ends `service`
later, with service = op x requests + store-path bytes/TP. The transfer ends at the later of
that end and its own link time (t + L + store-path bytes/BW, so the store never makes a
transfer faster than its link), plus its shared-memory bytes / shm bandwidth. The jobs:
  * a fetch batch (no pre-load), requested at ready: one request per remote input and one for
    `storage_bytes` (if any); shared-memory inputs are a reference each (a request, no bytes),
    read after the batch. start = the fetch's end;
  * an upload, requested at finish + the shared-memory write (if the output goes that way):
    one request, the output's store-path bytes. done = the upload's end;
  * a pre-load download: one request, the edge's store-path bytes (or the storage read).
With shared host CPUs as well, the store does the moving of data: a task's host work is then its
`duration_s` only (its fetch and upload are store jobs, not CPU work on the host), and the
store's own CPU is not taken from host_cpus (the calibrated throughput includes it).

Event ordering. The engine advances each worker's task sequence as far as known inputs allow
(those times depend only on values already final) and uses one heap for the events that interact
across workers: worker stops (priority 0: free slots and containers first), worker requests
(priority 1), pre-load link requests (priority 2), with shared host CPUs task execution
starts (priority 3), and with the serial store fetch and upload requests (priority 4). Heap
entries are (time, priority, key1, key2) with keys = (worker index, 0 data / 1 pre-warm), (task
index, edge position / -1 for storage) or (task index, 0 fetch / 1 upload); no two entries
compare equal, so the order never depends on insertion order. An execution start due at the
time being processed, when no host completion is due then, is applied at once rather than queued
(starts at one time commute; only the event log's order among equal times shows it).

Event log (`simulate(record_events=True)`): `(t, "worker k", what)` with what in request,
prewarm, cold start, warm start, ready, stop; `(t, "task u", what)` with what in ready, start,
finish, uploaded (only if it uploads), and on pre-loading workers "fetch task p" / "got task p"
(or "fetch storage" / "got storage") at a download's request and end. Sorted by time, then by the
order the engine derived the events, which is causal.

Critical path and slack. Every value above is a max of (earlier value + fixed delay): task
start, worker ready, download end. These constraints form the *timeline graph* (`Timeline`):
nodes are tasks (at their start), workers (at ready) and pre-load downloads (at their end),
with edges for data, plan order, start-up, concurrency slots and the download link. The critical
path is found by walking tight edges back from the sink (linear time; on ties a data edge wins
over plan order); its length equals the makespan. `critical_path` lists its tasks: it starts at a
root unless a pre-warmed worker's start-up, or a pre-load requested at a worker's ready time, is
what the first task on it waited for. Slack is latest start minus start from a backward pass
over the same graph, holding the simulated decisions (cold/warm, queue order, pre-warm) fixed;
with shared host CPUs or the serial store, each task's fetch, length and download as they
happened are the edge weights (the sharing and the store's queueing held fixed too).

Caveat: the warm-container choice, the concurrency queue and a pre-loading worker's link are
greedy/FIFO, so, as in any list scheduler (Graham's anomalies), making something slower can
occasionally make the makespan shorter when those decisions flip. Without them (no pre-load, no
container reuse, no binding limit, no shared host CPUs) the model is monotone, and a run
with the serial store is never faster than with independent links (every transfer ends no
earlier than on its link; the store's FIFO order itself can flip), and without pre-warm (whose
request time is a min) it is a max-plus system in which slack is exact.
A concurrency limit can deadlock a plan (a running worker waits for a worker that cannot start);
`simulate` raises SimulatorError then.
"""

from simulator.errors import PlatformError, SimulatorError
from simulator.gantt import draw_gantt
from simulator.model import SimInput
from simulator.platform import Platform, ResourceConfig, load_platform
from simulator.result import SimResult, Timeline
from simulator.sampling import Quantiles, SampleSummary, simulate_samples
from simulator.simulate import simulate

__all__ = [
    "Platform",
    "PlatformError",
    "Quantiles",
    "ResourceConfig",
    "SampleSummary",
    "SimInput",
    "SimResult",
    "SimulatorError",
    "Timeline",
    "draw_gantt",
    "load_platform",
    "simulate",
    "simulate_samples",
]
