"""The executors: the in-process reference executor and the Redis-backed decentralized one.

Entry points: `runtime.client.run_plan(plan, ...) -> RunResult` (decentralized),
`runtime.inline.run_inline(plan)` (reference). Worker process: `python -m runtime.worker`;
local pool server: `python -m runtime.pool`.

Protocol of the decentralized executor
======================================

There is no scheduler. Every key of a run lives under `<namespace>:{<dag id>}:` (names in
`runtime.keys`, the only module that formats them); every key has a TTL (the run's timeout plus
a margin) as a safety net, and the program knows all of them, so clean-up never SCANs.

Task states, and the Redis structure that holds each:

| state    | meaning                                      | held in                                |
|----------|----------------------------------------------|----------------------------------------|
| planned  | in its worker's program, nothing happened    | string `w:<worker>` (the program)      |
| waiting  | some remote parents have not finished        | set `deps:<task>` (finished remote     |
|          |                                              | parents, SCARD < number of them; a     |
|          |                                              | string when there is only one)         |
| ready    | every remote parent finished                 | list `notify:<worker>` (its id, until  |
|          |                                              | the worker pops it)                    |
| running  | its worker is executing it                   | the worker's memory (pool status slot) |
| finished | returned a value                             | hash `progress` (done count), list     |
|          |                                              | `timings`; its output in hash          |
|          |                                              | `out:<worker>` if a consumer runs on   |
|          |                                              | another worker                         |
| failed   | raised                                       | hash `errors` + `error` on list `done` |

Local parents (same worker) are never counted in Redis: a worker runs its tasks in plan order,
so they have finished before their children start, and their values stay in its memory.
Workers are *unclaimed* (absent from hash `started`), *claimed* (HSETNX by the client for root
workers, by the BATCH script otherwise: exactly once), then running (`progress.running`).

A run, step by step:

1. The client uploads the plan once, split (`runtime.program`): string `shared` (functions
   pickled once + settings) and one `w:<worker>` per worker, zlib-compressed; creates
   `progress` (the run exists while it does) and claims the root workers; one pipeline.
2. The client starts the root workers, then BLPOPs the list `done`. A list, not a pub/sub
   channel: a run that ends before the client waits leaves its signal there, so no signal can
   be missed and there is nothing to re-check. Every wait has a deadline.
3. A worker downloads `shared` (once per run per process: warm processes cache it) and its
   program in one round trip (which also counts it as running), and runs its tasks in order.
   A task with remote parents waits until its id is on `notify:<worker>` (BLPOP, woken by the
   producer, no polling), with its inputs prefetched (HMGET on the producers' `out:<worker>`
   hashes, via redis.asyncio) as soon as it is known to be ready.
4. Finished tasks are group-committed (`runtime.dataplane`): outputs that a remote consumer
   needs (one HSET into `out:<worker>`), then one BATCH script that adds to `progress` and
   `timings` and, per remote child, SADDs the batch's finished parents to `deps:<child>` (SET NX
   for a single parent); the write that completes it RPUSHes the child to its worker's `notify`
   list and claims that worker's start with HSETNX; the caller starts the workers claimed.
   SADD/SET NX make this idempotent: a task that runs twice counts once, so its child neither
   runs twice nor starts its worker twice.
5. The sink's worker, in one MULTI: stores `result`, UNLINKs every intermediate key, RPUSHes
   `ok` on `done`. The client reads the result and timings and deletes the rest.
6. A task that raises: its worker writes its error record to `errors` and `error` on `done`
   in one script (only while the run exists); the client raises TaskFailed at once, stops the
   run's workers and deletes the keys. Downstream tasks are never made ready, so never run.

Metrics (`<namespace>:metrics:...`, owned by `metadata`) outlive runs: workers record task and
worker records through the configured upload strategy, the client the run record.
"""
