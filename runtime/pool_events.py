"""What wakes the pool server: a start request or control message, a child's line, a child's exit.

The server loop (`runtime.pool`) used to block in one BLPOP of its request and control lists for
a tick (50 ms): a child that finished its worker, or exited, waited for the end of that BLPOP
before its process slot came free, so a queued worker could wait a whole tick per hand-over.
Now the loop waits in one `select` on everything that can happen:

- the request lists: a BLPOP (`REQUEST_BLOCK_S`) is *sent* on a connection of its own and left
  outstanding; the loop reads its reply when the connection's socket is readable
  (`RequestWaiter`). A reply is never dropped: a BLPOP still outstanding when the server leaves
  is woken by a `wake` control message and its reply read (`RequestWaiter.finish`);
- the children's sockets (`done`, `wait`, `run` lines);
- child exits: SIGCHLD, turned into a readable byte by `signal.set_wakeup_fd` (`ChildExits`).

So a hand-over costs the event's latency, not a tick's; the loop still wakes every tick for its
timers (task deadlines, heartbeat, waiting leases, keep-warm). Where the waiter cannot be used
(a connection without a socket, a Redis Cluster client) or its connection fails, the loop falls
back to a blocking BLPOP through the client, whose reconnect policy (`metadata.connect`) rides
out an outage.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
from collections.abc import Sequence
from typing import Any

import redis

log = logging.getLogger(__name__)

REQUEST_BLOCK_S = 1.0
"""BLPOP timeout of the outstanding request wait; it is simply sent again when it expires."""

WAKE = b'{"op": "wake"}'
"""Control message that ends an outstanding BLPOP at once (the server is leaving)."""


class ChildExits:
    """SIGCHLD as a readable file descriptor (`signal.set_wakeup_fd`), for the server's thread
    only; `close` restores the previous handler. Forked children must call `forget_in_child`."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._old_fd = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        self._old_handler = signal.signal(signal.SIGCHLD, _ignore)

    def fileno(self) -> int:
        return self._r

    @property
    def fds(self) -> tuple[int, int]:
        return self._r, self._w

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self._r, 512):
                pass

    def close(self) -> None:
        signal.set_wakeup_fd(self._old_fd)
        signal.signal(signal.SIGCHLD, self._old_handler or signal.SIG_DFL)
        for fd in (self._r, self._w):
            with contextlib.suppress(OSError):
                os.close(fd)


def forget_in_child(fds: Sequence[int]) -> None:
    """In a child forked by the server: no wakeup fd, default SIGCHLD, the pipe closed."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _ignore(signum: int, frame: Any) -> None:
    """SIGCHLD's handler: nothing; its only effect is the byte on the wakeup fd."""


class RequestWaiter:
    """An outstanding BLPOP of `keys` on a connection of its own (see the module docstring)."""

    def __init__(self, client: redis.Redis, keys: list[str]) -> None:
        self._client = client
        self._keys = keys
        self._conn: Any = None
        self._pending = False

    def arm(self) -> socket.socket | None:
        """Send the BLPOP unless one is outstanding; the socket to select on, or None when
        the waiter cannot be used (then the caller blocks through the client)."""
        if self._pending:
            return self._sock()
        try:
            if self._conn is None:
                self._conn = self._connection()
                if self._conn is None:
                    return None
            self._conn.send_command("BLPOP", *self._keys, REQUEST_BLOCK_S)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as err:
            log.warning("pool: request wait cannot be sent (%s); blocking through the client",
                        err)
            self._reset()
            return None
        self._pending = True
        return self._sock()

    def take(self) -> tuple[bytes, bytes] | None:
        """The outstanding BLPOP's reply (None: it timed out); call when its socket is
        readable. A failed connection raises (the loop counts it) after being reset."""
        self._pending = False
        try:
            reply = self._conn.read_response()
        except BaseException:
            self._reset()
            raise
        if reply is None:
            return None
        key, value = reply
        return (key if isinstance(key, bytes) else str(key).encode(),
                value if isinstance(value, bytes) else str(value).encode())

    def finish(self, control_key: str) -> tuple[bytes, bytes] | None:
        """Leaving: end an outstanding BLPOP (a `wake` message) and return what it popped,
        which may be a request that must not be lost (None: nothing, or only the wake)."""
        if not self._pending:
            self._reset()
            return None
        try:
            self._client.rpush(control_key, WAKE)
            item = self.take()
        except (redis.RedisError, OSError):
            return None
        finally:
            self._reset()
        if item is not None and item[1] == WAKE:
            return None
        with contextlib.suppress(redis.RedisError):  # ours is still queued: do not leave it
            self._client.lrem(control_key, 1, WAKE.decode())
        return item

    def _connection(self) -> Any:
        pool = getattr(self._client, "connection_pool", None)
        if pool is None:  # a cluster client: no single connection to hold
            return None
        try:
            conn = pool.get_connection()
        except TypeError:  # redis-py before 5.3 wants a command name
            conn = pool.get_connection("BLPOP")
        conn.connect()
        if getattr(conn, "_sock", None) is None:
            pool.release(conn)
            return None
        return conn

    def _sock(self) -> socket.socket | None:
        return getattr(self._conn, "_sock", None) if self._conn is not None else None

    def _reset(self) -> None:
        self._pending = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.disconnect()
            with contextlib.suppress(Exception):
                self._client.connection_pool.release(self._conn)
        self._conn = None


def wait_readable(fds: Sequence[Any], timeout_s: float) -> set[Any]:
    """The members of `fds` (objects with `fileno`, or ints) readable within `timeout_s`."""
    if not fds:
        return set()
    try:
        readable, _, _ = select.select(list(fds), [], [], timeout_s)
    except (OSError, ValueError) as err:  # a socket closed under us: reaped soon
        log.warning("pool: select failed (%s)", err)
        return set()
    return set(readable)
