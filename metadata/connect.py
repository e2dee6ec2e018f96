"""Redis clients: the one place planflow builds them, sync and asyncio, with one reconnect policy.

Every component that talks to Redis - the client of a run, workers and their data-plane loop,
pool servers, the metrics store, the embedded server's checks - gets its client here. It lives
in `metadata` because that is the lowest package that talks to Redis (the runtime imports
metadata, never the reverse).

Pools are explicit and *blocking*: a caller that finds every connection in use waits for one
(up to `POOL_WAIT_S`) instead of failing, so a burst of concurrent commands is backpressure, not
an error. redis-py 8 lowered the asyncio pool's default to 100 connections and raises
`MaxConnectionsError` past it; planflow never relies on a default.

Reconnecting is redis-py's own `Retry`: a command that fails on a lost connection (refused,
reset, timed out, or a server still loading its data) is sent again on a new connection after a
jittered exponential backoff (`RECONNECT_FIRST_S` doubling up to `RECONNECT_MAX_S`), for about
`OUTAGE_S` in all; only then does the error reach the caller. Commands planflow sends are
idempotent or tolerate a repeat (see `runtime.scripts`), so resending is safe. Blocking reads
(BLPOP) must use a socket timeout longer than their own timeout: `blocking_socket_timeout`.

**Redis Cluster.** A URL naming a node of a Redis Cluster (`redis://node:7000/0`) gets a cluster
client (`redis.cluster.RedisCluster`, `redis.asyncio.cluster.RedisCluster`), which learns the
slot map from that node and sends each command to the shard of its keys: the factory asks the
node once per process (`INFO cluster`, `cluster_mode`) and remembers the answer. Nothing else
changes for callers: every key of a run shares the run's hash tag (`runtime.keys`), so its Lua
scripts and MULTI blocks stay in one slot; metrics keys carry no tag and spread over the shards
(`metadata.keys`). The cluster client is typed as `redis.Redis` for its callers: it serves every
command planflow sends, with the same reconnect policy (per node connection pools of the same
limits, blocking for the sync client).
"""

from __future__ import annotations

import threading
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from redis.backoff import EqualJitterBackoff
from redis.exceptions import BusyLoadingError

OUTAGE_S = 30.0
"""How long a lost Redis is ridden out (reconnecting with backoff) before commands fail."""

RECONNECT_FIRST_S = 0.05
"""First wait before reconnecting; doubled on every attempt up to RECONNECT_MAX_S."""

RECONNECT_MAX_S = 2.0
"""Longest wait between two reconnection attempts."""

CONNECT_TIMEOUT_S = 5.0
"""How long one connection attempt (TCP, TLS, Unix socket) may take."""

COMMAND_TIMEOUT_S = 60.0
"""Default longest wait for the reply to one command (large values included)."""

POOL_WAIT_S = OUTAGE_S
"""How long a caller waits for a free connection of a full pool before failing."""

SYNC_MAX_CONNECTIONS = 64
"""Connections of one sync client (one per thread blocked in a command, at most)."""

ASYNC_MAX_CONNECTIONS = 32
"""Connections of one asyncio client (the data plane bounds its own concurrency below this)."""

HEALTH_CHECK_S = 15.0
"""A connection idle for this long is PINGed before reuse (stale after a server restart)."""


def reconnect_retries(outage_s: float = OUTAGE_S) -> int:
    """Retries whose backoff waits add up to about `outage_s` (EqualJitterBackoff waits between
    half and all of min(RECONNECT_MAX_S, RECONNECT_FIRST_S x 2^n) before attempt n)."""
    total, n = 0.0, 0
    while total < outage_s:
        total += 0.75 * min(RECONNECT_MAX_S, RECONNECT_FIRST_S * 2 ** n)
        n += 1
    return n


RETRIED_ERRORS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError,
                                               BusyLoadingError, OSError)
"""What a command is resent after: the connection, not the command, failed. `OSError` is the
socket's own error (refused, reset, unreachable): redis-py before 7.4 retries the connection
attempt itself on the errors listed here before it turns them into `ConnectionError`, so without
it a client whose server is restarting fails at once on a new connection."""

_ASYNC_RETRIED_ERRORS: Any = RETRIED_ERRORS
"""The same for the asyncio `Retry`, whose annotation changed across redis-py versions (RedisError
subclasses before 8.2, any exception from 8.2); the code has always taken any exception type."""


def blocking_socket_timeout(block_s: float) -> float:
    """Socket timeout of a client whose longest blocking command waits `block_s` seconds."""
    return block_s + CONNECT_TIMEOUT_S


def _options(socket_timeout: float) -> dict[str, Any]:
    # `retry_on_error` too: redis-py resends only errors the connection lists there as well
    return {"socket_connect_timeout": CONNECT_TIMEOUT_S, "socket_timeout": socket_timeout,
            "health_check_interval": HEALTH_CHECK_S,
            "retry_on_error": list(RETRIED_ERRORS)}


def sync_client(url: str, *, socket_timeout: float = COMMAND_TIMEOUT_S,
                max_connections: int = SYNC_MAX_CONNECTIONS, decode_responses: bool = False,
                outage_s: float = OUTAGE_S) -> redis.Redis:
    """A sync client of `url` with a blocking pool of `max_connections` and the reconnect
    policy (`outage_s=0`: fail at the first lost connection, e.g. for probes); a cluster
    client for a Redis Cluster node (`cluster_mode`). Raises ValueError for a malformed URL, or
    a cluster node with a redis-py older than CLUSTER_MIN_REDIS_PY."""
    from redis.retry import Retry

    if cluster_mode(url):
        from redis.cluster import RedisCluster

        _check_cluster_client(url)
        return cast(redis.Redis, RedisCluster.from_url(
            url, max_connections=max_connections, timeout=POOL_WAIT_S,
            connection_pool_class=redis.BlockingConnectionPool,
            decode_responses=decode_responses,
            retry=Retry(_backoff(), reconnect_retries(outage_s) if outage_s > 0 else 0,
                        supported_errors=RETRIED_ERRORS),
            socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=socket_timeout))
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT_S,
        decode_responses=decode_responses,
        retry=Retry(_backoff(), reconnect_retries(outage_s) if outage_s > 0 else 0,
                    supported_errors=RETRIED_ERRORS),
        **_options(socket_timeout))
    return redis.Redis(connection_pool=pool)


def async_client(url: str, *, socket_timeout: float = COMMAND_TIMEOUT_S,
                 max_connections: int = ASYNC_MAX_CONNECTIONS,
                 outage_s: float = OUTAGE_S) -> aioredis.Redis:
    """The asyncio twin of `sync_client` (create it inside the loop that will use it)."""
    from redis.asyncio.retry import Retry

    if cluster_mode(url):
        from redis.asyncio.cluster import RedisCluster

        _check_cluster_client(url)
        return cast(aioredis.Redis, RedisCluster.from_url(
            url, max_connections=max_connections,
            retry=Retry(_backoff(), reconnect_retries(outage_s) if outage_s > 0 else 0,
                        supported_errors=_ASYNC_RETRIED_ERRORS),
            **_options(socket_timeout)))
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT_S,
        retry=Retry(_backoff(), reconnect_retries(outage_s) if outage_s > 0 else 0,
                    supported_errors=_ASYNC_RETRIED_ERRORS),
        **_options(socket_timeout))
    return aioredis.Redis(connection_pool=pool)


_CLUSTER_MODE: dict[str, bool] = {}
"""URL -> whether its server is a Redis Cluster node (asked once per process)."""

_CLUSTER_MODE_LOCK = threading.Lock()


CLUSTER_MIN_REDIS_PY = (6, 1)
"""The first redis-py whose cluster pipelines run MULTI blocks (of one slot's keys)."""


def _check_cluster_client(url: str) -> None:
    found = tuple(int(x) for x in redis.__version__.split(".")[:2])
    if found < CLUSTER_MIN_REDIS_PY:
        from metadata.errors import redact_url

        raise ValueError(f"{redact_url(url)} is a Redis Cluster node, and Redis Cluster needs "
                         f"redis-py {'.'.join(map(str, CLUSTER_MIN_REDIS_PY))} or newer "
                         f"(installed: {redis.__version__}); pip install -U redis")


def cluster_mode(url: str) -> bool:
    """Whether `url` names a node of a Redis Cluster (`INFO cluster`). Unix sockets are never
    cluster nodes here; a server that cannot be asked is taken as a plain one this time (its
    client then reports the failure) and asked again by the next caller."""
    if url.startswith("unix:"):
        return False
    with _CLUSTER_MODE_LOCK:
        known = _CLUSTER_MODE.get(url)
    if known is not None:
        return known
    probe = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S,
                                 socket_timeout=CONNECT_TIMEOUT_S)
    try:
        enabled = int(probe.info("cluster").get("cluster_enabled", 0)) == 1
    except (redis.RedisError, ValueError):
        return False
    finally:
        probe.close()
    with _CLUSTER_MODE_LOCK:
        _CLUSTER_MODE[url] = enabled
    return enabled


def server_clock(client: redis.Redis, key: str) -> Any:
    """The TIME reply of the server holding `key` (on a cluster, the shard of its slot: the
    clock the Lua scripts writing that key read)."""
    from redis.cluster import RedisCluster

    if isinstance(client, RedisCluster):
        return client.execute_command("TIME", target_nodes=client.get_node_from_key(key))
    return client.time()


def disconnect(client: redis.Redis) -> None:
    """Drop every connection of `client` (the next command opens fresh ones)."""
    from redis.cluster import RedisCluster

    if isinstance(client, RedisCluster):
        client.disconnect_connection_pools()
    else:
        client.connection_pool.disconnect()


def _backoff() -> EqualJitterBackoff:
    return EqualJitterBackoff(cap=RECONNECT_MAX_S, base=RECONNECT_FIRST_S)
