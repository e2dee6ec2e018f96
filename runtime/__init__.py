"""The executors: the in-process reference executor and the Redis-backed decentralized one.

Entry points: `runtime.client.run_plan(plan, ...) -> RunResult` (decentralized),
`runtime.inline.run_inline(plan)` (reference). Worker process: `python -m runtime.worker`;
local pool server: `python -m runtime.pool`.

Protocol of the decentralized executor
======================================

There is no scheduler. Every key of a run lives under `<namespace>:{<dag id>}:` (names in
`runtime.keys`, the only module that formats them); every key has a TTL (the run's timeout plus
a margin) as a safety net, and the program knows all of them, so clean-up never SCANs.

`progress` is the run's *liveness key*: created first, deleted first by whoever ends the run,
and every script that writes a run key checks it and otherwise writes nothing
(`runtime.scripts`), so no late write - a straggling worker, a pool reporting a death, a lease
renewal in flight - can recreate a key of a run that is over. The client registers each run in
`<ns>:runs` (`runtime.registry`) with its host, pid and a heartbeat, so a run whose client was
killed is reclaimed by the next command on the same store.

Task states, and the Redis structure that holds each:

| state    | meaning                                      | held in                                |
|----------|----------------------------------------------|----------------------------------------|
| planned  | in its worker's program, nothing happened    | string `w:<worker>` (the program)      |
| waiting  | some remote parents have not finished        | set `deps:<task>` (finished remote     |
|          |                                              | parents, SCARD < number of them; a     |
|          |                                              | string when there is only one)         |
| ready    | every remote parent finished                 | list `notify:<worker>` (its id, until  |
|          |                                              | the worker pops it)                    |
| running  | its worker is executing it (attempt n)       | the worker's memory (pool status slot: |
|          |                                              | task, attempt, deadline); the worker's |
|          |                                              | lease in hash `leases`                 |
| finished | returned a value                             | hash `progress` (done count), list     |
|          |                                              | `timings`; its output in hash          |
|          |                                              | `out:<worker>` if a consumer runs on   |
|          |                                              | another worker                         |
| retrying | an attempt raised (or passed its timeout)    | the worker's memory (backoff), or the  |
|          | and its retry policy allows another          | relaunch spec (`task_attempts`)        |
| failed   | raised, no attempt left                      | hash `errors` + `error` on list `done` |

Local parents (same worker) are never counted in Redis: a worker runs its tasks in plan order,
so they have finished before their children start, and their values stay in its memory.
Workers are *unclaimed* (absent from hash `started`), *claimed* (HSETNX by the client for root
workers, by the BATCH script otherwise: exactly once), then running (`progress.running`).

A run, step by step:

1. The client registers the run (`<ns>:runs`), then uploads the plan once, split
   (`runtime.program`): string `shared` (functions pickled once + settings) and one
   `w:<worker>` per worker, zlib-compressed; creates `progress` (the run exists while it does)
   and claims the root workers; one pipeline. It subscribes to the run's `failures` channel.
2. The client starts the root workers, then BLPOPs the list `done`. A list, not a pub/sub
   channel: a run that ends before the client waits leaves its signal there, so no signal can
   be missed and there is nothing to re-check. Every wait has a deadline.
3. A worker downloads `shared` (once per run per process: warm processes cache it) and its
   program in one round trip (which also counts it as running), and runs its tasks in order.
   A task with remote parents waits until its id is on `notify:<worker>` (BLPOP, woken by the
   producer, no polling), with its inputs prefetched (HMGET on the producers' `out:<worker>`
   hashes, via redis.asyncio) as soon as it is known to be ready.
4. Finished tasks are group-committed (`runtime.dataplane`): outputs that a remote consumer
   needs (PUT into `out:<worker>`; a value larger than the server accepts fails its task
   before any upload), then one BATCH script that adds to `progress` and
   `timings` and, per remote child, SADDs the batch's finished parents to `deps:<child>` (SET NX
   for a single parent); the write that completes it RPUSHes the child to its worker's `notify`
   list and claims that worker's start with HSETNX, writing its first lease with the claim;
   the caller starts the workers claimed.
   SADD/SET NX make this idempotent: a task that runs twice counts once, so its child neither
   runs twice nor starts its worker twice.
5. The sink's worker, in one script (FINISH): stores `result`, UNLINKs every intermediate key,
   RPUSHes `ok` on `done`. The client reads the result and timings and deletes the rest,
   `progress` first, and removes the run from the registry.
6. A task that raises: its worker writes its error record to `errors` and `error` on `done`
   in one script (only while the run exists); the client raises TaskFailed at once, stops the
   run's workers and deletes the keys. Downstream tasks are never made ready, so never run.
   The record says what failed (`kind`): the task's own code (TaskFailed), the store (a
   StoreError naming the condition: OOM, READONLY, NOAUTH, MISCONF...) or the worker around
   the task. When the store refuses even the record (out of memory), it is PUBLISHed on the
   run's `failures` channel, which the waiting client hears.

7. Attempts (`runtime.retry`): a task that raises is retried in its worker while
   `retries` (else the run's default) and `retry_on` allow, after an exponential backoff with
   jitter seeded per (run, task, attempt); every attempt is a metrics record (`attempt`, `ok`,
   `error`) and the timings row of a retried task carries its attempt. An attempt past its
   `timeout_s` is killed by the pool server (a thread cannot be interrupted safely inside
   arbitrary code; a process can, and the pool already owns it) and counts as a failed attempt:
   the worker is relaunched with that attempt used, or the run fails with `TaskTimeout`.
   A task's `sys.exit()` is its failure (SystemExit is retried like an exception).
   An attempt cut short by its process's death (timeout, OOM kill, signal) is recorded by the
   pool server, which saw it die (`runtime.deaths`).
8. Leases (`runtime.leases`): each running worker holds one lease in hash `leases`,
   `"<generation> <expires at>"` by the Redis server's clock, renewed every second by its
   data-plane thread (no per-task round trip). The pool server relaunches a worker whose process
   died the moment it reaps it (after an OOM kill on the platform's next larger configuration,
   recorded in list `recovered` and in the run result); the waiting client relaunches workers
   whose lease expired (the pool itself is gone). A worker holds its lease from the moment it is
   claimed (the claim writes it, generation 1), not only once it runs: a claimer that dies
   between its claim and its start request (killed right after its BATCH, a pool that dies
   holding the request) would otherwise leave a worker claimed once and for all, never started,
   and the run waiting for nothing anyone could see; the claimer's relaunched generation asks
   for such a worker again at once (`runtime.scripts`). RELAUNCH is a compare-and-set on the
   generation, so each death is relaunched once; relaunches are bounded. A relaunched worker
   reruns its program from the start - safe because every update is idempotent - and finds its
   inputs in the producers' output hashes, since its `notify` list may have been drained by the
   dead one. Crash budgets are per task (a worker whose tasks are each killed once finishes).
   A request waiting for a free pool process is not a death: its pool renews its claim lease.
9. Faults of Redis: every client comes from one factory (`metadata.connect`: blocking pools
   with explicit limits, redis-py's Retry riding out a lost connection for about 30 s), then
   the component fails with a StoreError naming the condition; a run whose keys vanished
   (restart without persistence) fails at the client's next check, naming that. The client's
   heartbeat write is the canary of a store that refuses writes. Every client wait has a
   deadline.
10. Interrupts: SIGTERM and SIGHUP end `planflow` like Ctrl-C (`runtime.interrupts`): workers
   cancelled, keys deleted, the embedded server stopped, exit 143/129/130.
11. Dynamic fan-outs (`planflow.map`, `runtime.fanout`): the worker of a map node, once its
   input arrived, runs the first elements itself and creates the rest as new workers in groups
   (EXPAND: their programs, claims and first leases, and the names of the keys they will make
   in set `dynamic`, which FINISH and the client delete); each group's collecting step is one
   member of the map's join `deps` set, whose completion makes the join ready like any task.
   A relaunched map worker expands again idempotently (claims and the total count once).
12. Worker environments (`runtime.environments`): a plan with requirements runs on pool servers
   started with its prepared environment's interpreter; their keys are `<ns>:pool@<env>:...`,
   so only they serve its start requests (`RunSettings.env` tells workers which pools to ask).

Security: the Redis URL (password, `rediss://` TLS) reaches processes only through the
environment, never argv, and is shown only through `metadata.errors.redact_url`. A worker
checks that its dag id and namespace are well-formed and that the plan it downloaded names the
same run and namespace (else it refuses, touching nothing); a pool server refuses start requests
of another namespace. Nothing from a plan or from Redis reaches a shell (subprocesses get argv
lists). A plan is code (cloudpickle): only run plans from a trusted source.

Metrics (`<namespace>:metrics:...`, owned by `metadata`) outlive runs: workers record task and
worker records through the configured upload strategy, the client the run record.
"""
