"""The multi-key transitions of the protocol, each one Lua script (atomic, one round trip).

**Batch update** (`BATCH`): a batch of finished tasks of one worker adds to the run's progress
counters and timings, and tells the tasks' remote children. Per child it records the batch's
finished parents in the child's `deps` key: a set (one variadic SADD, then SCARD) when the child
waits for several remote parents, a string written with SET NX when it waits for one. Both
ignore a parent already recorded, so a re-run (retried) task never counts twice. The write that
completes a child (the set reaches the child's number of remote parents, or the SET NX
succeeds) makes it ready: its id is pushed to its worker's `notify` list, and the worker's start
is claimed with HSETNX on `started` (value: the claimer, `"<worker id> <generation>"`) - once
per worker, whoever gets there first (the client claims root workers the same way). The script
returns `{1, workers whose start it claimed...}`; the caller starts them. The claim also writes
the claimed worker's first lease, `"1 <expires> c"` (generation 1, expiring
`LEASE_START_GRACE_S` from now by the server's clock, `c`: claimed, not yet running; the worker
replaces it when it runs).

The start request leaves the caller only after the script, so a caller killed in between would
leave a worker claimed - never claimed again, the claim being once - yet never asked for. Two
things cover that. A claimer is relaunched at once by the pool that reaped it; re-running its
tasks, it finds their children already complete, and for each child's worker still holding the
claim lease of an earlier generation of the same claimer, it claims the start again (its
generation replaces the old one in `started`, so it asks once). And when the claimer's pool is
gone too, the claim lease expires and the client relaunches the worker (`runtime.leases`). If a
start is asked for twice after all (the dead claimer's request did leave), the first process to
write its lease keeps it and the second stops (`LEASE`).

**Error record** (`ERROR`): writes a task's error record and the `error` completion signal in
one step. When the store refuses even that (out of memory), the record is PUBLISHed on the
run's `failures` channel instead (`report_error`): PUBLISH allocates nothing that stays, so
Redis accepts it under OOM, and the waiting client subscribes to that channel.

**Outputs** (`PUT`): stores a batch of outputs in the worker's output hash (values travel as
arguments; the caller splits batches so no single command nears the server's query-buffer limit).

**Shared memory** (`RESERVE`): reserves a value's size on the run's bound of shared-memory
values (`runtime.shm`), or refuses when the bound would be passed.

**Completion** (`FINISH`, the sink's worker only): stores the result, unlinks every intermediate
key (those the plan names, and those dynamic fan-outs listed in the `dynamic` set) and pushes
`ok` onto `done`, in one step.

**Expansion** (`EXPAND`, a dynamic fan-out's worker, `runtime.fanout`): for a batch of the
fan-out's new workers, stores their programs, lists the keys they will create in the run's
`dynamic` set, claims each worker's start (HSETNX on `started`, with its first lease, as
BATCH does) and records its spec in `relaunched` (what a relaunch starts from, since the plan
does not know the worker). The first batch of a fan-out also adds its tasks to the progress
`total`, once: only when its marker (the join's dependency key name) is new to `dynamic`, so a
relaunched worker expanding again counts nothing twice. Returns `{1, workers it claimed...}`.

**Liveness guard.** Every script that writes a run key first checks that the run's `progress`
key exists and otherwise writes nothing (BATCH returns `{0}`, the others 0). `progress` is the
run's liveness key: created first by the client's upload, and deleted *first* by whoever ends
the run (the client, after the result or on abort), before any other key. So once a run is over
no late write - a straggling worker, a pool reporting a death, a relaunch - can recreate any of
its keys: there are no unguarded writes of run keys.

Scripts are sent with EVALSHA; the digest is computed here, and a server that lost its script
cache (restart, SCRIPT FLUSH) gets the source once (`NOSCRIPT` -> SCRIPT LOAD -> retry, safe
because both scripts are idempotent).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from runtime.defaults import CLAIM_GRACE_S
from runtime.keys import RunKeys
from runtime.program import RemoteChild

BATCH_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then return {0} end
local ttl, prefix = ARGV[1], ARGV[2]
if ARGV[3] ~= '0' then redis.call('HINCRBY', KEYS[2], 'done', ARGV[3]) end
if ARGV[4] ~= '0' then redis.call('HINCRBY', KEYS[2], 'running', ARGV[4]) end
if ARGV[5] ~= '' and redis.call('RPUSH', KEYS[3], ARGV[5]) == 1 then
  redis.call('EXPIRE', KEYS[3], ttl)
end
local ready, again = {}, {}
if ARGV[6] ~= '' then
  for _, e in ipairs(cjson.decode(ARGV[6])) do
    local child, need, wi, parents = e[1], e[2], e[3], e[4]
    local deps = prefix .. child
    local now_ready, was_ready = false, false
    if need == 1 then
      now_ready = redis.call('SET', deps, parents[1], 'NX', 'EX', ttl) ~= false
      was_ready = not now_ready
    else
      local added = 0
      for i = 1, #parents, 1000 do
        added = added + redis.call('SADD', deps, unpack(parents, i, math.min(i + 999, #parents)))
      end
      local n = redis.call('SCARD', deps)
      if added > 0 then
        if n == added then redis.call('EXPIRE', deps, ttl) end
        now_ready = n == need
      else
        was_ready = n == need
      end
    end
    if now_ready then
      local list = ready[wi]
      if list == nil then list = {}; ready[wi] = list end
      list[#list + 1] = child
    elseif was_ready then
      again[wi] = true
    end
  end
end
local claimer = ARGV[8]
local me = string.match(claimer, '^(%S+) ')
local out, expires = {1}, nil
for wi = 1, #KEYS - 4 do
  local list, wid = ready[wi], ARGV[8 + wi]
  local claim = false
  if list ~= nil then
    local key = KEYS[4 + wi]
    for i = 1, #list, 1000 do
      redis.call('RPUSH', key, unpack(list, i, math.min(i + 999, #list)))
    end
    redis.call('EXPIRE', key, ttl)
    claim = redis.call('HSETNX', KEYS[1], wid, claimer) == 1
  end
  if not claim and me ~= nil and (list ~= nil or again[wi]) then
    local by = redis.call('HGET', KEYS[1], wid)
    local lease = redis.call('HGET', KEYS[4], wid)
    if by and by ~= claimer and string.match(by, '^(%S+) ') == me and lease
        and string.match(lease, '^1 %S+ c$') then
      redis.call('HSET', KEYS[1], wid, claimer)
      claim = true
    end
  end
  if claim then
    if expires == nil then
      local t = redis.call('TIME')
      expires = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[7]))
    end
    redis.call('HSET', KEYS[4], wid, '1 ' .. expires .. ' c')
    redis.call('EXPIRE', KEYS[4], ttl)
    out[#out + 1] = wid
  end
end
return out
"""

ERROR_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('RPUSH', KEYS[3], 'error')
redis.call('EXPIRE', KEYS[3], ARGV[3])
return 1
"""

PUT_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
for i = 2, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

FINISH_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[1])
local made = redis.call('SMEMBERS', KEYS[4])
for i = 1, #made, 1000 do
  redis.call('UNLINK', unpack(made, i, math.min(i + 999, #made)))
end
for i = 4, #KEYS, 1000 do
  redis.call('UNLINK', unpack(KEYS, i, math.min(i + 999, #KEYS)))
end
redis.call('RPUSH', KEYS[3], 'ok')
redis.call('EXPIRE', KEYS[3], ARGV[1])
return 1
"""

EXPAND_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local ttl, claimer, n, marker, total = ARGV[1], ARGV[2], tonumber(ARGV[4]), ARGV[5], ARGV[6]
if marker ~= '' and redis.call('SADD', KEYS[5], marker) == 1 then
  redis.call('HINCRBY', KEYS[1], 'total', total)
end
local t = redis.call('TIME')
local lease = '1 ' .. string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1e6
                                     + tonumber(ARGV[3])) .. ' c'
local out = {1}
for i = 1, n do
  local wid, blob, spec = ARGV[6 + i], ARGV[6 + n + i], ARGV[6 + 2 * n + i]
  redis.call('SET', KEYS[5 + i], blob, 'EX', ttl)
  if redis.call('HSETNX', KEYS[2], wid, claimer) == 1 then
    redis.call('HSET', KEYS[3], wid, lease)
    redis.call('HSET', KEYS[4], wid, spec)
    out[#out + 1] = wid
  end
end
for i = 7 + 3 * n, #ARGV, 1000 do
  redis.call('SADD', KEYS[5], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
for i = 2, 5 do redis.call('EXPIRE', KEYS[i], ttl) end
return out
"""

RESERVE_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local held = redis.call('INCRBY', KEYS[1], ARGV[1])
if held == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
if held > tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return 0
end
return 1
"""

PUSH_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, #KEYS do
  redis.call('RPUSH', KEYS[i], ARGV[1])
  redis.call('EXPIRE', KEYS[i], ARGV[2])
end
return 1
"""


@dataclass(frozen=True)
class Script:
    """A Lua script and its SHA1 digest (what EVALSHA names it by)."""

    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()


BATCH = Script(BATCH_LUA)
ERROR = Script(ERROR_LUA)
PUT = Script(PUT_LUA)
FINISH = Script(FINISH_LUA)
PUSH = Script(PUSH_LUA)
RESERVE = Script(RESERVE_LUA)
EXPAND = Script(EXPAND_LUA)
SCRIPTS = (BATCH, ERROR, PUT, FINISH, PUSH, RESERVE, EXPAND)


@dataclass(frozen=True)
class ScriptCall:
    """KEYS and ARGV of one script invocation."""

    script: Script
    keys: list[str]
    args: list[Any]

    @property
    def keys_and_args(self) -> list[Any]:
        return [*self.keys, *self.args]


@dataclass(frozen=True)
class BatchUpdate:
    """What one worker reports in one batch."""

    finished: Sequence[tuple[str, Sequence[RemoteChild]]] = ()
    """(finished task, its remote children) pairs."""
    done: int = 0
    running: int = 0
    timings_json: str = ""


def batch_call(keys: RunKeys, update: BatchUpdate, ttl_s: int, claimer: str = "",
               claim_grace_s: float = CLAIM_GRACE_S) -> ScriptCall:
    """The BATCH call of one batch: per remote child, the parents of this batch that finished.
    `claimer` is `"<worker id> <generation>"` of the worker sending it ("" for others); the
    leases of workers it claims last `claim_grace_s` unless renewed.

    The children travel as one JSON argument (decoded by the script's cjson) and their `deps`
    keys are built in the script from the prefix `RunKeys.deps("")` gives: a fan-out of 1,000
    children is then a handful of arguments, not 5,000 for the client library to encode."""
    children: dict[str, tuple[RemoteChild, list[str]]] = {}
    worker_index: dict[str, int] = {}
    for parent, remote in update.finished:
        for child in remote:
            children.setdefault(child.task_id, (child, []))[1].append(parent)
            worker_index.setdefault(child.worker_id, len(worker_index) + 1)
    entries = [[c.task_id, c.needed, worker_index[c.worker_id], parents]
               for c, parents in children.values()]
    call_keys = [keys.started(), keys.progress(), keys.timings(), keys.leases(),
                 *(keys.notify(w) for w in worker_index)]
    args = [str(ttl_s), keys.deps(""), str(update.done), str(update.running),
            update.timings_json, json.dumps(entries, separators=(",", ":")) if entries else "",
            repr(claim_grace_s), claimer, *worker_index]
    return ScriptCall(BATCH, call_keys, args)


def started_workers(reply: Any) -> tuple[bool, list[str]]:
    """(run still exists, workers whose start this call claimed) from a BATCH reply."""
    items = list(reply or [0])
    return bool(int(items[0])), [w.decode() if isinstance(w, bytes) else str(w)
                                 for w in items[1:]]


def error_call(keys: RunKeys, task_id: str, record_json: str, ttl_s: int) -> ScriptCall:
    """The ERROR call that records one task's failure and signals the client."""
    return ScriptCall(ERROR, [keys.progress(), keys.errors(), keys.done()],
                      [task_id, record_json, str(ttl_s)])


def report_error(client: redis.Redis, keys: RunKeys, task_id: str, record_json: str,
                 ttl_s: int) -> bool:
    """Record a failure (ERROR); when the store refuses that write (out of memory, read-only),
    PUBLISH the record on the run's `failures` channel instead, which the waiting client
    hears: a failure is never silently dropped. True when the record was stored or heard."""
    try:
        call_sync(client, error_call(keys, task_id, record_json, ttl_s))
        return True
    except redis.RedisError as err:
        try:
            return int(client.publish(keys.failures(), record_json)) > 0
        except redis.RedisError:
            raise err from None


def put_calls(keys: RunKeys, worker_id: str, outputs: Mapping[str, bytes], ttl_s: int,
              max_bytes: int) -> list[ScriptCall]:
    """PUT calls storing `outputs` (task id -> pickled value) in the worker's output hash, each
    call carrying at most `max_bytes` of values (one larger value goes alone)."""
    calls: list[ScriptCall] = []
    args: list[Any] = []
    size = 0
    for task_id, value in outputs.items():
        if args and size + len(value) > max_bytes:
            calls.append(ScriptCall(PUT, [keys.outputs(worker_id), keys.progress()],
                                    [str(ttl_s), *args]))
            args, size = [], 0
        args += [task_id, value]
        size += len(value)
    if args:
        calls.append(ScriptCall(PUT, [keys.outputs(worker_id), keys.progress()],
                                [str(ttl_s), *args]))
    return calls


def finish_call(keys: RunKeys, result: bytes, cleanup: Sequence[str], ttl_s: int) -> ScriptCall:
    """The sink's FINISH call: store `result`, unlink `cleanup`, signal `ok`."""
    return ScriptCall(FINISH, [keys.progress(), keys.result(), keys.done(), keys.dynamic(),
                               *cleanup], [str(ttl_s), result])


@dataclass(frozen=True)
class NewWorker:
    """One worker a dynamic fan-out creates: its id, program blob and spec (JSON)."""

    worker_id: str
    program: bytes
    spec_json: str


def expand_call(keys: RunKeys, workers: Sequence[NewWorker], made: Sequence[str], ttl_s: int,
                claimer: str, claim_grace_s: float, marker: str = "",
                add_total: int = 0) -> ScriptCall:
    """The EXPAND call for a batch of new `workers`; `made` are the key names they will create
    (deleted with the run); `marker`/`add_total`: the first batch's once-only total increment."""
    call_keys = [keys.progress(), keys.started(), keys.leases(), keys.relaunched(),
                 keys.dynamic(), *(keys.worker_program(w.worker_id) for w in workers)]
    args: list[Any] = [str(ttl_s), claimer, repr(claim_grace_s), str(len(workers)), marker,
                       str(add_total), *(w.worker_id for w in workers),
                       *(w.program for w in workers), *(w.spec_json for w in workers), *made]
    return ScriptCall(EXPAND, call_keys, args)


def reserve_call(keys: RunKeys, nbytes: int, max_bytes: int, ttl_s: int) -> ScriptCall:
    """RESERVE `nbytes` of the run's shared-memory bound: 1 reserved, 0 past `max_bytes`,
    -1 the run is gone."""
    return ScriptCall(RESERVE, [keys.shm_bytes(), keys.progress()],
                      [str(nbytes), str(max_bytes), str(ttl_s)])


def push_call(keys: RunKeys, lists: Sequence[str], value: str, ttl_s: int) -> ScriptCall:
    """RPUSH `value` onto each of `lists` (run keys) while the run exists."""
    return ScriptCall(PUSH, [keys.progress(), *lists], [value, str(ttl_s)])


def queue_call(pipe: Any, call: ScriptCall) -> None:
    """Queue a script call on a pipeline (sync or asyncio). Sent as a raw EVALSHA command:
    redis-py's Redis Cluster pipelines refuse their `evalsha` method (a script's keys could lie
    in several slots), and planflow's scripts touch the keys of one run, which share a slot."""
    pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys_and_args)


def is_noscript(err: BaseException) -> bool:
    """The server does not know the script (redis-py maps the NOSCRIPT reply to this class)."""
    return isinstance(err, redis.exceptions.NoScriptError)


def call_sync(client: redis.Redis, call: ScriptCall) -> Any:
    """Run a script call on a sync client, loading the script if the server lost it."""
    try:
        return client.evalsha(call.script.sha, len(call.keys), *call.keys_and_args)
    except redis.ResponseError as err:
        if not is_noscript(err):
            raise
        client.script_load(call.script.source)
        return client.evalsha(call.script.sha, len(call.keys), *call.keys_and_args)


async def call_async(client: aioredis.Redis, call: ScriptCall) -> Any:
    """`call_sync` for redis.asyncio."""
    try:
        return await client.evalsha(call.script.sha, len(call.keys), *call.keys_and_args)
    except redis.ResponseError as err:
        if not is_noscript(err):
            raise
        await client.script_load(call.script.source)
        return await client.evalsha(call.script.sha, len(call.keys), *call.keys_and_args)
