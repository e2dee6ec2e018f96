"""The multi-key transitions of the protocol, each one Lua script (atomic, one round trip).

**Batch update** (`BATCH`): a batch of finished tasks of one worker adds to the run's progress
counters and timings, and tells the tasks' remote children. For each
(parent, child) pair it adds the parent to the child's `deps` set; SADD returns 0 for a parent
already counted, so a re-run (retried) task never counts twice. The pair that brings the set's
size to the child's number of remote parents makes the child ready: the child's id is pushed to
its worker's `notify` list, and the worker's start is claimed with HSETNX on `started` - exactly
once per worker, whoever gets there first (the client claims root workers the same way). The
script returns `{1, workers whose start it claimed...}`; the caller starts them. When the run's
`progress` key is gone (finished, cancelled or expired) it writes nothing and returns `{0}`, so a
straggler never recreates the keys of a run that was cleaned up.

**Error record** (`ERROR`): writes a task's error record and the `error` completion signal in
one step, and only while the run exists (its `shared` key), so a late failure never recreates
the keys of a finished or cancelled run.

Scripts are sent with EVALSHA; the digest is computed here, and a server that lost its script
cache (restart, SCRIPT FLUSH) gets the source once (`NOSCRIPT` -> SCRIPT LOAD -> retry, safe
because both scripts are idempotent).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from runtime.keys import RunKeys
from runtime.program import RemoteChild

BATCH_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then return {0} end
local ttl = ARGV[1]
local nc, nw, ne = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if ARGV[5] ~= '0' then redis.call('HINCRBY', KEYS[2], 'done', ARGV[5]) end
if ARGV[6] ~= '0' then redis.call('HINCRBY', KEYS[2], 'running', ARGV[6]) end
if ARGV[7] ~= '' and redis.call('RPUSH', KEYS[3], ARGV[7]) == 1 then
  redis.call('EXPIRE', KEYS[3], ttl)
end
local cbase = 7 + nw
local a = 8 + nw + nc
local ready = {}
for _ = 1, ne do
  local parent, ci = ARGV[a], tonumber(ARGV[a + 1])
  local need, wi = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  local deps = KEYS[3 + ci]
  if redis.call('SADD', deps, parent) == 1 then
    local n = redis.call('SCARD', deps)
    if n == 1 then redis.call('EXPIRE', deps, ttl) end
    if n == need then
      local list = ready[wi]
      if list == nil then list = {}; ready[wi] = list end
      list[#list + 1] = ARGV[cbase + ci]
    end
  end
end
local out = {1}
for wi = 1, nw do
  local list = ready[wi]
  if list ~= nil then
    local key = KEYS[3 + nc + wi]
    for i = 1, #list, 1000 do
      redis.call('RPUSH', key, unpack(list, i, math.min(i + 999, #list)))
    end
    redis.call('EXPIRE', key, ttl)
    local wid = ARGV[7 + wi]
    if redis.call('HSETNX', KEYS[1], wid, '1') == 1 then out[#out + 1] = wid end
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


@dataclass(frozen=True)
class Script:
    """A Lua script and its SHA1 digest (what EVALSHA names it by)."""

    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()


BATCH = Script(BATCH_LUA)
ERROR = Script(ERROR_LUA)
SCRIPTS = (BATCH, ERROR)


@dataclass(frozen=True)
class ScriptCall:
    """KEYS and ARGV of one script invocation."""

    script: Script
    keys: list[str]
    args: list[str]

    @property
    def keys_and_args(self) -> list[str]:
        return [*self.keys, *self.args]


@dataclass(frozen=True)
class BatchUpdate:
    """What one worker reports in one batch."""

    finished: Sequence[tuple[str, Sequence[RemoteChild]]] = ()
    """(finished task, its remote children) pairs."""
    done: int = 0
    running: int = 0
    timings_json: str = ""


def batch_call(keys: RunKeys, update: BatchUpdate, ttl_s: int) -> ScriptCall:
    """The BATCH call of one batch."""
    child_index: dict[str, int] = {}
    worker_index: dict[str, int] = {}
    entries: list[str] = []
    for parent, children in update.finished:
        for child in children:
            ci = child_index.setdefault(child.task_id, len(child_index) + 1)
            wi = worker_index.setdefault(child.worker_id, len(worker_index) + 1)
            entries += [parent, str(ci), str(child.needed), str(wi)]
    call_keys = [keys.started(), keys.progress(), keys.timings(),
                 *(keys.deps(c) for c in child_index), *(keys.notify(w) for w in worker_index)]
    counts = (ttl_s, len(child_index), len(worker_index), len(entries) // 4, update.done,
              update.running)
    args = [*map(str, counts), update.timings_json, *worker_index, *child_index, *entries]
    return ScriptCall(BATCH, call_keys, args)


def started_workers(reply: Any) -> tuple[bool, list[str]]:
    """(run still exists, workers whose start this call claimed) from a BATCH reply."""
    items = list(reply or [0])
    return bool(int(items[0])), [w.decode() if isinstance(w, bytes) else str(w)
                                 for w in items[1:]]


def error_call(keys: RunKeys, task_id: str, record_json: str, ttl_s: int) -> ScriptCall:
    """The ERROR call that records one task's failure and signals the client."""
    return ScriptCall(ERROR, [keys.shared(), keys.errors(), keys.done()],
                      [task_id, record_json, str(ttl_s)])


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
