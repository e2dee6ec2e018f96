"""What a Redis error means for the user: the condition by name, what happened, and the fix.

Redis refuses commands for reasons a user can act on - out of memory, a read-only replica, a
password, a failing disk - and redis-py reports each as a class or an error prefix. `condition_of`
maps any `redis.RedisError` to a `StoreCondition`, so every layer (workers, the run's client, the
metrics store, the CLI) says the same thing the same way:

    >>> condition_of(redis.exceptions.OutOfMemoryError("OOM command not allowed ...")).name
    'OOM'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import redis
from redis import exceptions as rx

TEXT_SCANNED = 400
"""How much of an error's text is searched for the server's error code."""


@dataclass(frozen=True)
class StoreCondition:
    """A named condition of the store: `name` (e.g. OOM), what happened, and the fix."""

    name: str
    happened: str
    fix: str
    transient: bool = False
    """Whether waiting and retrying can help (a lost connection, a server still loading)."""

    def describe(self, where: str, doing: str = "") -> str:
        """One message: the server (`where`, its URL redacted), what happened, while `doing`
        what, and the fix."""
        during = f" while {doing}" if doing else ""
        return f"Redis at {where} {self.happened} ({self.name}){during}. {self.fix}"


_BY_PREFIX: tuple[tuple[str, StoreCondition], ...] = (
    ("OOM", StoreCondition(
        "OOM", "is out of memory: it refuses writes past its maxmemory",
        "Free memory on the server or raise its maxmemory; large task values belong on "
        "shared storage (return a path), and a run's keys are freed when it ends")),
    ("READONLY", StoreCondition(
        "READONLY", "is a read-only replica",
        "Point --redis (or PLANFLOW_REDIS_URL) at the primary")),
    ("NOAUTH", StoreCondition(
        "NOAUTH", "requires a password",
        "Put it in the URL: redis://:PASSWORD@host:port/db (or rediss:// for TLS)")),
    ("WRONGPASS", StoreCondition(
        "WRONGPASS", "rejected the user name or password",
        "Check the credentials in the URL (redis://USER:PASSWORD@host:port/db)")),
    ("NOPERM", StoreCondition(
        "NOPERM", "denies this user a command or key planflow needs",
        "Grant the user read/write on the namespace's keys and EVAL/EVALSHA (ACL)")),
    ("MISCONF", StoreCondition(
        "MISCONF", "cannot persist its data to disk, so it refuses writes",
        "Check the server's disk space and the permissions of its `dir`, then retry")),
    ("LOADING", StoreCondition(
        "LOADING", "is still loading its data set", "Retry in a moment", transient=True)),
    ("BUSY", StoreCondition(
        "BUSY", "is busy running a long script",
        "Wait for it, or ask its operator (SCRIPT KILL)", transient=True)),
    ("CROSSSLOT", StoreCondition(
        "CROSSSLOT", "is a Redis Cluster and refused a command spanning slots",
        "Pass the cluster's URL so planflow talks to it as a cluster")),
    ("MOVED", StoreCondition(
        "MOVED", "is a Redis Cluster node that does not own these keys",
        "Pass the cluster's URL so planflow talks to it as a cluster")),
    ("CLUSTERDOWN", StoreCondition(
        "CLUSTERDOWN", "is a Redis Cluster that is down", "Wait for the cluster to recover",
        transient=True)),
    ("max number of clients", StoreCondition(
        "MAXCLIENTS", "has reached its maxclients limit",
        "Raise maxclients on the server or run fewer workers at once")),
)

_CONNECTION = StoreCondition(
    "CONNECTION", "cannot be reached (connection refused, reset or timed out)",
    "Check that the server is running and reachable from this machine", transient=True)

_OTHER = StoreCondition("ERROR", "refused a command", "See the server's reply above")


def condition_of(err: BaseException) -> StoreCondition:
    """The condition a Redis error (or an error caused by one) stands for. The server's error
    code may sit inside a longer text (a pipeline's "Command # 2 (...) caused error: OOM ...",
    a script's "Error running script ...: OOM ..."), so it is looked for as a word."""
    text = str(err)[:TEXT_SCANNED]
    for code, condition in _BY_PREFIX:
        if re.search(rf"(^|[\s:(]){re.escape(code)}\b", text):
            return condition
    if isinstance(err, rx.OutOfMemoryError):
        return _BY_PREFIX[0][1]
    if isinstance(err, rx.ReadOnlyError):
        return _BY_PREFIX[1][1]
    if isinstance(err, rx.AuthenticationError):
        return _BY_PREFIX[2][1]
    if isinstance(err, rx.BusyLoadingError):
        return _BY_PREFIX[6][1]
    if isinstance(err, redis.ConnectionError | redis.TimeoutError | OSError):
        return _CONNECTION
    return _OTHER


def is_store_error(err: BaseException) -> bool:
    """Whether `err`, or an error it was raised from, is a Redis error."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, redis.RedisError):
            return True
        seen = seen.__cause__
    return False
