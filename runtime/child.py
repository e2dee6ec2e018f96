"""A pool's worker process: forked from the pool server, it runs workers one after another.

The pool server has already imported the runtime (and the modules a plan asked it to preload),
so a forked child starts without paying Python start-up or imports: that is the warm-pool
promise. Between workers the child stays alive and idle; its second worker is a *warm* start
that also reuses the connections and the cached shared plan part of its run.

Protocol on the child's socket (one line each): server -> child `<WorkerSpec JSON>` or `exit`;
child -> server `done` after each worker, and `wait` when its worker starts waiting for remote
inputs while the server is short of slots (below). EOF from the server also means exit (the
pool died: an idle child leaves at once, a busy one after finishing its worker).

While a worker waits for remote inputs (`WorkerContext.waiting`) its child sets the slot's
`waiting` flag, and the server counts that process's slot as lent (`runtime.pool`). Setting a
flag costs no system call; only when the server has set the slot's `pressure` flag (requests
queued at the cap) does the child also send `wait`, so the server lends the slot at once
rather than at its next tick.

A small shared-memory slot tells the server which task the child is running - its id,
function, attempt, start, input size and the attempt's deadline - so a child that dies mid-task
(OOM kill, SIGKILL) is reported naming that task, and one whose attempt passes its `timeout_s`
is killed by the server (`runtime.deaths` says what follows). Each child's stderr goes to its
own file, `<PLANFLOW_HOME>/logs/worker-<pid>.err`, whose tail error records carry; the server
removes it when the child has exited.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from runtime.context import WorkerContext
from runtime.defaults import log_dir
from runtime.events import Event, TaskStarted, WorkerFinished
from runtime.launcher import WorkerSpec
from runtime.pool_events import forget_in_child
from runtime.worker import WORKER_SWITCH_INTERVAL_S, Worker

log = logging.getLogger(__name__)

STATUS_BYTES = 1024
"""Size of a child's status slot: a sequence counter, two flag bytes (`WAITING_AT`,
`PRESSURE_AT`), then from `TEXT_AT` the `Running` fields of the running task, tab-separated,
NUL-terminated."""

SEQ = struct.Struct("<Q")
"""The slot's sequence counter (seqlock): odd while the child writes, even when stable."""

WAITING_AT, PRESSURE_AT, TEXT_AT = 8, 9, 16
"""Offsets in the slot: the child's `waiting` flag, the server's `pressure` flag, the text."""

READ_TRIES = 100
"""Reads of a slot being rewritten before the server gives up and treats it as unknown."""


@dataclass(frozen=True)
class Running:
    """What a child's status slot says it is running ("" task: nothing)."""

    task_id: str = ""
    function: str = ""
    deadline_at: float = 0.0
    attempt: int = 1
    max_attempts: int = 1
    started_at: float = 0.0
    function_key: str = ""
    input_bytes: int = 0

    @classmethod
    def of(cls, event: TaskStarted) -> Running:
        return cls(event.task_id, event.function_name, event.deadline_at, event.attempt,
                   event.max_attempts, event.started_at, event.function_key, event.input_bytes)

    def dumps(self) -> str:
        return (f"{self.task_id}\t{self.function}\t{self.deadline_at!r}\t{self.attempt}\t"
                f"{self.max_attempts}\t{self.started_at!r}\t{self.function_key}\t"
                f"{self.input_bytes}")

    @classmethod
    def parse(cls, text: str) -> Running:
        """The fields of a slot's text; never raises: a slot that does not parse (cut short,
        garbled) reads as nothing running, with whatever task id it names."""
        parts = text.split("\t")
        if len(parts) == 8:
            try:
                return cls(parts[0], parts[1], float(parts[2]), int(parts[3]), int(parts[4]),
                           float(parts[5]), parts[6], int(parts[7]))
            except ValueError:
                log.warning("unreadable status slot %r", text[:200])
        return cls(parts[0] if len(parts) > 1 else "", parts[1] if len(parts) > 1 else "")


def stderr_path(pid: int) -> str:
    """The stderr file of pool child `pid`."""
    return str(log_dir() / f"worker-{pid}.err")


class StatusSlot:
    """A shared anonymous mapping the child writes and the server reads, as a seqlock: the
    writer makes the counter odd, writes, makes it even; a reader retries until it reads the
    same even counter before and after copying the text, so it never sees half a write."""

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, STATUS_BYTES)
        self._seq = 0

    def write(self, text: str) -> None:
        data = text.encode()[:STATUS_BYTES - TEXT_AT - 1] + b"\0"  # what follows is ignored
        self._seq += 1
        SEQ.pack_into(self._map, 0, self._seq)
        self._map[TEXT_AT:TEXT_AT + len(data)] = data
        self._seq += 1
        SEQ.pack_into(self._map, 0, self._seq)

    @property
    def waiting(self) -> bool:
        """The child's worker waits for remote inputs (it lends its slot)."""
        return self._map[WAITING_AT] == 1

    @waiting.setter
    def waiting(self, value: bool) -> None:
        self._map[WAITING_AT] = 1 if value else 0

    @property
    def pressure(self) -> bool:
        """The server has requests queued at its cap (a child starting to wait says so)."""
        return self._map[PRESSURE_AT] == 1

    @pressure.setter
    def pressure(self, value: bool) -> None:
        self._map[PRESSURE_AT] = 1 if value else 0

    def read(self) -> str:
        """The slot's text ("" when it cannot be read consistently)."""
        for _ in range(READ_TRIES):
            (before,) = SEQ.unpack_from(self._map, 0)
            if before % 2 == 0:
                raw = bytes(self._map[TEXT_AT:STATUS_BYTES])
                (after,) = SEQ.unpack_from(self._map, 0)
                if after == before:
                    return raw.split(b"\0", 1)[0].decode(errors="replace")
            time.sleep(0)
        return ""

    def close(self) -> None:
        self._map.close()


@dataclass
class _StatusListener:
    """Keeps the status slot on the task being run."""

    slot: StatusSlot

    def __call__(self, event: Event) -> None:
        if isinstance(event, TaskStarted):
            self.slot.write(Running.of(event).dumps())
        elif isinstance(event, WorkerFinished):
            self.slot.write("")


def fork_child(url: str, sock_pair: tuple[socket.socket, socket.socket],
               close_in_child: list[socket.socket], slot: StatusSlot,
               server_fds: Sequence[int] = ()) -> int:
    """Fork a child that serves workers on `sock_pair[1]`; returns its pid (in the server).
    `server_fds`: the server's SIGCHLD wakeup pipe (`runtime.pool_events.ChildExits`), which
    the child closes and stops signalling to."""
    server_end, child_end = sock_pair
    pid = os.fork()
    if pid:
        child_end.close()
        return pid
    try:  # the child: never return into the server's code
        server_end.close()
        for s in close_in_child:
            s.close()
        forget_in_child(server_fds)
        _redirect_stderr()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        code = serve(url, child_end, slot)
    except BaseException:
        log.exception("pool child %d crashed", os.getpid())
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _redirect_stderr() -> None:
    path = stderr_path(os.getpid())
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError:
        return  # keep the server's stderr
    os.dup2(fd, 2)
    os.close(fd)


def serve(url: str, sock: socket.socket, slot: StatusSlot) -> int:
    """The child's loop: run each assigned worker, report `done`, until `exit` or EOF."""
    sys.setswitchinterval(WORKER_SWITCH_INTERVAL_S)
    # connect (and start the data-plane thread) before the first assignment: a process forked
    # ahead of time (prewarm) then starts its first worker with nothing left to set up
    ctx = WorkerContext(url)
    ctx.io  # noqa: B018 - created for its side effect

    @contextlib.contextmanager
    def waiting() -> Iterator[None]:
        """Flag the wait for inputs (the server may lend the slot meanwhile), waking the
        server only when it is short of slots; a server that is gone is noticed at `done`."""
        slot.waiting = True
        if slot.pressure:
            with contextlib.suppress(OSError):
                sock.sendall(b"wait\n")
        try:
            yield
        finally:
            slot.waiting = False

    ctx.waiting = waiting
    cold = True
    reader = sock.makefile("rb")
    try:
        while True:
            line = reader.readline()
            if not line or line.strip() == b"exit":
                return 0
            spec = WorkerSpec.from_json(line)
            try:
                Worker(ctx, spec, listeners=[_StatusListener(slot)], cold=cold).run()
            except Exception:
                log.exception("worker %s of %s crashed", spec.worker_id, spec.dag_id)
            cold = False
            slot.write("")
            try:
                sock.sendall(b"done\n")
            except OSError:
                return 0  # the server is gone
    finally:
        ctx.close()
