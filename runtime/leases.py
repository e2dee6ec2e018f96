"""Worker leases and recovery: how a dead or stuck worker is noticed and relaunched, boundedly.

**Lease.** Hash `leases` of the run: worker id -> `"<generation> <expires at, unix s>
<holder>"`, the holder being `c` (claimed or relaunched, no process running it yet) or the token
of the process that holds it: a process may take a `c` lease of its generation, renew its own,
and is told it was superseded (LEASE returns 0) when a newer generation or another process of
its own generation (a start asked for twice) holds it. Expiry times are the Redis server's clock
(the scripts read TIME), and whoever checks them compares with that clock too: workers, pools
and the client may run on machines whose clocks disagree. A worker holds one lease (not one per
task: its tasks run one after another in one process, so the process's liveness is what
matters), written by its data-plane thread when it starts and renewed every `LEASE_RENEW_S` (one
LEASE script call per second per worker; nothing per task). The worker's last batch deletes it.
The generation is the worker's `WorkerSpec.attempt`.

A lease exists from the moment a worker is *claimed* (HSETNX on `started`, by the client for
root workers, by BATCH for the others): the claim writes generation 1, expiring after
`LEASE_START_GRACE_S`, and the worker's first renewal replaces it. The start request is sent
after the claim is committed, and the claim is once per run; a claimer killed in between (its
task SIGKILLed it right after the batch) or a pool that dies holding the request would leave a
worker claimed, never started and never claimed again - a hang no lease could reveal. With the
claim lease it is relaunched like a worker that stopped renewing - or sooner, by the claimer's
own relaunched generation (`runtime.scripts`).

**Who notices an expired lease, and why two parties.**

- The **pool server** notices first and knows most: it reaps its children (waitpid), so it
  learns of a death within one loop tick, and it knows *why* - a signal, an OOM kill at the
  cgroup memory limit, or its own kill of an attempt past the task's `timeout_s`. It relaunches
  at once, without waiting for any lease to run out, on a larger configuration after an OOM.
- The **client** is the backstop for what the pool cannot see (the pool server itself died with
  its children, the machine vanished, a worker hangs with its data-plane thread stuck): it is
  waiting for the run anyway, so every `LEASE_CHECK_S` it reads `leases` (one HGETALL, off the
  workers' path) and relaunches workers whose lease expired - at once when no live pool holds
  them (the lease names the pool of the process holding it), and only `POOL_ALIVE_GRACE_S`
  later when their pool is alive: that pool reports a death itself, and a worker stalled
  under memory pressure, about to be OOM-killed and relaunched larger by its pool, must not be
  relaunched at the same size meanwhile.

Both go through RELAUNCH, a compare-and-set on the generation: a death is relaunched once,
whoever notices first. An older generation that is in fact still alive (a partition, not a
death) learns at its next renewal that it was superseded (LEASE returns 0) and stops. Running a
worker's program again from the start is safe: every dependency update is idempotent (SADD /
SET NX), outputs are overwritten with equal values, and the relaunched worker finds its remote
inputs in the producers' output hashes instead of its `notify` list (which the dead one may
have drained). Relaunches are bounded per task attempt, not per worker: a worker whose process
died while running a task is relaunched at most `MAX_DEATHS_PER_TASK` times for that task (a
death between tasks, or a lost lease, counts against the worker itself), a timed-out task at
most as often as its retries allow; past them the death becomes the run's error. So one worker
running many tasks survives one kill of each (a budget per worker would fail it at the third).
Every relaunch stores the new spec in hash `relaunched` with the relaunch record, so whoever
relaunches next (pool or client) continues the same budgets.

**Waiting is not dying.** A claimed worker whose start request waits for a free process (the
pool is at its limit) holds a claim lease nobody renews. The pool holding the request renews it
(`HOLD`, every `LEASE_RENEW_S`, one call per run for all its waiting workers) until a process
takes the worker, so a backlog of any length never expires into relaunches; if that pool dies,
the claim leases expire and the client relaunches the workers, as for any lost start.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace

from runtime.defaults import CLAIM_GRACE_S
from runtime.keys import RunKeys
from runtime.launcher import WorkerSpec
from runtime.scripts import Script, ScriptCall

LEASE_TTL_S = 10.0
"""A lease not renewed for this long belongs to a dead (or hopelessly stuck) worker."""

LEASE_RENEW_S = 1.0
"""How often a worker's data-plane thread renews its lease."""

LEASE_START_GRACE_S = CLAIM_GRACE_S
"""A claimed or relaunched worker's lease lasts this long unless renewed (`runtime.defaults`)."""

LEASE_CHECK_S = 2.0
"""How often the waiting client looks for expired leases."""

POOL_ALIVE_GRACE_S = 30.0
"""How long past its expiry the client leaves the lease of a worker whose pool server is alive
to that pool: the pool reaps and reports its children's deaths itself, and a process stalled
(under memory pressure near its limit, say) is not dead. Past it the worker counts as hung."""

MAX_DEATHS_PER_TASK = 2
"""Relaunches of a worker whose process died (signal, OOM) while running one task, before that
death becomes the run's error."""

BETWEEN_TASKS = ""
"""The `deaths` entry of a worker that died between tasks or lost its lease."""

LEASE_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local gen, holder = string.match(cur, '^(%d+) %S+ ?(%S*)$')
  if tonumber(gen) > tonumber(ARGV[2]) then return 0 end
  if tonumber(gen) == tonumber(ARGV[2]) and holder ~= 'c' and holder ~= ''
      and holder ~= ARGV[5] then return 0 end
end
local t = redis.call('TIME')
local expires = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1],
           ARGV[2] .. ' ' .. string.format('%.6f', expires) .. ' ' .. ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

RELAUNCH_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur and tonumber(string.match(cur, '^(%d+)')) ~= tonumber(ARGV[2]) then return 0 end
local t = redis.call('TIME')
local expires = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. ' ' .. string.format('%.6f', expires) .. ' c')
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('RPUSH', KEYS[3], ARGV[5])
redis.call('EXPIRE', KEYS[3], ARGV[6])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[7])
redis.call('EXPIRE', KEYS[4], ARGV[6])
return 1
"""

HOLD_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local t = redis.call('TIME')
local expires = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[1]))
local held = 0
for i = 3, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur then
    local gen, holder = string.match(cur, '^(%d+) %S+ ?(%S*)$')
    if gen == ARGV[i + 1] and holder == 'c' then
      redis.call('HSET', KEYS[1], ARGV[i], gen .. ' ' .. expires .. ' c')
      held = held + 1
    end
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return held
"""

LEASE = Script(LEASE_LUA)
RELAUNCH = Script(RELAUNCH_LUA)
HOLD = Script(HOLD_LUA)


def lease_call(keys: RunKeys, worker_id: str, generation: int, ttl_s: int,
               holder: str) -> ScriptCall:
    """Write or renew a lease for process `holder` (a token unique to it); the reply is 1
    (held), 0 (superseded: a newer generation, or another process of this one, holds it) or -1
    (run gone)."""
    return ScriptCall(LEASE, [keys.leases(), keys.progress()],
                      [worker_id, str(generation), repr(LEASE_TTL_S), str(ttl_s), holder])


def parse_lease(raw: bytes | str) -> tuple[int, float]:
    """(generation, expires at by the Redis server's clock) of a lease value."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    gen, expires = text.split()[:2]  # then the holder: `c` (claimed, not yet running) or a token
    return int(gen), float(expires)


def lease_pool(raw: bytes | str) -> str | None:
    """The pool server whose process holds a lease (`<pid>-<token>@<pool id>`), if one does."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    parts = text.split()
    holder = parts[2] if len(parts) > 2 else ""
    return holder.rpartition("@")[2] if "@" in holder else None


def lease_pid(raw: bytes | str) -> int | None:
    """The pid of the process holding a lease (`<pid>-<token>[@<pool id>]`), if one does."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    parts = text.split()
    pid = parts[2].partition("-")[0] if len(parts) > 2 else ""
    return int(pid) if pid.isdigit() else None


@dataclass(frozen=True)
class Death:
    """Why a worker's process ended early: `crash` (signal, exit), `oom` (killed at its memory
    limit) or `timeout` (killed by the pool: `task` ran past its `timeout_s`), and the task's
    attempt number and attempts allowed (timeouts only)."""

    reason: str
    task: str = ""
    attempt: int = 1
    max_attempts: int = 1


def relaunch_spec(spec: WorkerSpec, death: Death) -> WorkerSpec | None:
    """The spec to start the worker again with, or None when the budget of the task it died
    running (its timeouts, or its deaths) is spent."""
    now, gen = time.time(), spec.attempt + 1
    if death.reason == "timeout":
        if death.attempt >= death.max_attempts:
            return None
        used = dict(spec.task_attempts)
        used[death.task] = death.attempt
        return replace(spec, attempt=gen, requested_at=now,
                       task_attempts=tuple(sorted(used.items())))
    task = death.task or BETWEEN_TASKS
    if spec.deaths_of(task) >= MAX_DEATHS_PER_TASK:
        return None
    deaths = dict(spec.deaths)
    deaths[task] = deaths.get(task, 0) + 1
    new = replace(spec, attempt=gen, requested_at=now, deaths=tuple(sorted(deaths.items())))
    if death.reason == "oom":
        larger = spec.larger()
        if larger is None:
            return None
        return replace(new, memory_mb=larger[0], cpus=larger[1])
    return new


def relaunch_call(keys: RunKeys, old: WorkerSpec, new: WorkerSpec, death: Death,
                  ttl_s: int, grace_s: float = LEASE_START_GRACE_S) -> ScriptCall:
    """Claim the relaunch of `old` as `new` (compare-and-set on the generation) and record it;
    the reply is 1 when this caller won and must start `new`."""
    record = json.dumps({"worker_id": old.worker_id, "generation": new.attempt,
                         "reason": death.reason, "task_id": death.task,
                         "from_memory_mb": old.memory_mb, "memory_mb": new.memory_mb,
                         "at": time.time()})
    return ScriptCall(RELAUNCH, [keys.progress(), keys.leases(), keys.recovered(),
                                 keys.relaunched()],
                      [old.worker_id, str(old.attempt), str(new.attempt),
                       repr(grace_s), record, str(ttl_s), new.to_json()])


def hold_call(keys: RunKeys, waiting: list[WorkerSpec], ttl_s: int) -> ScriptCall:
    """HOLD the claim leases of workers whose start requests wait for a free process: each
    lease still in the claimed state (`c`) of that generation expires LEASE_TTL_S from now."""
    args: list[str] = [repr(LEASE_TTL_S), str(ttl_s)]
    for spec in waiting:
        args += [spec.worker_id, str(spec.attempt)]
    return ScriptCall(HOLD, [keys.leases(), keys.progress()], args)


def server_time(reply: tuple[int, int] | list[int]) -> float:
    """Unix seconds from a Redis TIME reply (seconds, microseconds)."""
    return int(reply[0]) + int(reply[1]) / 1e6
