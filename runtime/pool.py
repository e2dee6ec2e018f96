"""The local launcher's pool server: starts worker processes on request, keeps them warm.

    PLANFLOW_REDIS_URL=... python -m runtime.pool --namespace NS [--keep-warm-s 600]

One server per (Redis, namespace) on a machine, started by `runtime.local.LocalLauncher` when
none is alive. Anyone - the client for root workers, a worker for the workers it made ready -
asks for a worker by pushing a `WorkerSpec` JSON onto `<ns>:pool:{pool}:requests`; the server
pops it and hands it to an idle process of the same configuration (a *warm* start, preferring
one that already ran a worker of that run: its plan is cached), or forks a new one from itself
(imports already done: no interpreter start-up). Each process is put under its configuration's
CPU quota and memory limit (`runtime.limits`) once, when forked.

Idle processes leave after `keep_warm_s` (the platform's keep-warm time); the server leaves when
it has had no process for as long, on `shutdown`, or when its loop keeps failing (Redis gone past
the reconnect policy of `metadata.connect`, or a bug): then it first writes an error record to
every run it holds work of, so their clients fail at once, naming the pool log.

At most `max_processes` processes exist at once; further requests wait in the server's backlog,
and the server renews their claim leases while they wait (`runtime.leases`: waiting is not
dying), so a backlog of thousands of workers drains at the pool's pace without a relaunch.
A worker blocked on its remote inputs (its child's status slot says so, `runtime.child`) lends
its slot: while it waits the pool may hold one more process, up to `WAITING_EXTRA_MAX` past the
cap, as the Ray launcher lends CPUs back. Otherwise a plan with more waiting workers than the
cap would deadlock (every slot held by a worker waiting for inputs of a worker still queued).

The loop is event-driven (`runtime.pool_events`): a request, a child's line and a child's exit
each wake it at once, so a process slot comes free (and a queued worker starts) as soon as its
previous worker is done, not at the next tick.

Control messages on `<ns>:pool:{pool}:<id>:control`: `prewarm` (fork idle processes per
configuration, import modules), `cancel` (kill a run's processes, ignore its later requests,
then reply), `shutdown` (finish busy workers, then exit and reply).

A process that dies while running a worker (OOM kill, signal) is recorded, then relaunched or
reported as the run's failure (`runtime.deaths`): the server reaps its children, so it is the
first to know, and knows why. An attempt that runs past its task's `timeout_s` (the child's
status slot holds the deadline) is killed by the server and handled the same way.
Requests of another namespace than the server's are refused (logged, dropped).
`--mode spawn` starts every worker as a fresh `python -m runtime.worker` (cold, for comparison).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass

import redis

from metadata.connect import blocking_socket_timeout, sync_client
from runtime.child import Running, StatusSlot, fork_child, stderr_path
from runtime.deaths import RECORD_TTL_S, DeathHandler, pool_failure_record
from runtime.defaults import POOL_ID_ENV, REDIS_URL_ENV, log_dir
from runtime.keys import PoolKeys, RunKeys
from runtime.launcher import WorkerSpec
from runtime.leases import LEASE_RENEW_S, Death, hold_call
from runtime.limits import ResourceLimiter
from runtime.pool_client import process_identity
from runtime.pool_events import ChildExits, RequestWaiter, wait_readable
from runtime.scripts import call_sync, queue_call, report_error

log = logging.getLogger(__name__)

POOL_TICK_S = 0.05
"""Longest wait of the server loop when nothing happens: how often it checks task deadlines,
leases and idle timers (requests, child lines and exits wake it at once)."""

WAITING_EXTRA_MAX = 64
"""Most processes past `max_processes` the pool holds for workers waiting on their inputs
(each waiting worker lends its slot; see the module docstring)."""

HEARTBEAT_S = 1.0
"""How often the server renews its entry in `<ns>:pool:{pool}:alive`."""

ALIVE_TTL_S = 5.0
"""An entry of `<ns>:pool:{pool}:alive` not renewed for this long belongs to a dead server."""

DEFAULT_KEEP_WARM_S = 600.0
"""Idle processes (and an empty server) stay this long unless the platform says otherwise."""

MAX_PROCESSES = 512
"""Most worker processes at once; requests beyond wait for a process to come free."""

PREWARM_MAX_PER_CONFIG = 16
"""Most idle processes a `prewarm` forks ahead per configuration."""

REQUESTS_PER_POP = 256
"""Start requests taken per round trip when several are queued."""

FORKS_PER_TICK = 8
"""Processes forked per loop iteration at most, so a burst of requests never keeps the loop
(reaping, control messages, renewing waiting leases) away for long."""

LOOP_ERRORS_MAX = 5
"""Consecutive failed loop iterations (a bug, a refusing store) after which the server gives up:
it reports the failure to the runs it serves, retires its children and exits."""

SHUTDOWN_WAIT_S = 60.0
"""On shutdown, how long busy workers may take to finish before they are killed."""

FORGET_CANCELLED_S = 3600.0
"""How long a cancelled run's late start requests are still ignored."""



@dataclass
class Process:
    """One worker process of the pool."""

    pid: int
    config: tuple[int, float]
    sock: socket.socket | None
    slot: StatusSlot | None
    spec: WorkerSpec | None = None
    popen: subprocess.Popen[bytes] | None = None
    last_dag: str = ""
    idle_since: float = 0.0
    retiring: bool = False
    """Asked to exit: never given another worker (it may already have read `exit`)."""
    buffer: bytes = b""
    timed_out: Death | None = None

    @property
    def waiting(self) -> bool:
        """Its worker waits for remote inputs (its slot's flag): it lends its slot meanwhile."""
        return self.spec is not None and self.slot is not None and self.slot.waiting


class PoolServer:
    """The server loop; `serve` returns when the server should exit."""

    def __init__(self, url: str, namespace: str, *, keep_warm_s: float = DEFAULT_KEEP_WARM_S,
                 mode: str = "fork", max_processes: int = MAX_PROCESSES, env: str = "") -> None:
        self.url = url
        self.keys = PoolKeys(namespace, env)
        self.keep_warm_s = keep_warm_s
        self.mode = mode
        self.pool_id = f"{socket.gethostname()}-{os.getpid()}"
        self.redis = sync_client(url, socket_timeout=blocking_socket_timeout(POOL_TICK_S))
        self.limiter = ResourceLimiter(f"pool{os.getpid()}")
        self.deaths = DeathHandler(self.redis, url, self.pool_id)
        self.procs: dict[int, Process] = {}
        self.backlog: deque[WorkerSpec] = deque()
        self.cancelled: dict[str, float] = {}
        self.stopping = False
        self._shutdown_reply: str | None = None
        self.max_processes = max_processes
        self._last_activity = time.monotonic()
        self._next_heartbeat = 0.0
        self._next_hold = 0.0
        self._waiter = RequestWaiter(self.redis, [self.keys.control(self.pool_id),
                                                  self.keys.requests()])
        self._pressure = False
        """Requests are queued at the cap: the busy children's slots say so (`runtime.child`)."""
        self._exits: ChildExits | None = None
        """SIGCHLD as a readable fd, while `serve` runs (signals belong to the main thread)."""

    # -- loop ---------------------------------------------------------------------------------

    def serve(self, ready_token: str | None = None) -> None:
        os.environ[POOL_ID_ENV] = self.pool_id  # inherited by every worker process
        self._exits = ChildExits()
        self._heartbeat()
        if ready_token:
            self._reply(ready_token, self.pool_id)
        failures = 0
        try:
            while not self._should_exit():
                try:
                    self._step()
                    failures = 0
                except Exception as err:  # the server loop is a top level: it must not die
                    failures += 1
                    log.exception("pool %s: loop iteration failed (%d in a row)", self.pool_id,
                                  failures)
                    if failures >= LOOP_ERRORS_MAX:
                        self._give_up(err)
                        break
                    time.sleep(POOL_TICK_S)
        finally:
            self._exit()

    def _step(self) -> None:
        """One iteration: wait (at most a tick) for a request, control message, child line or
        child exit; reap and time out processes, start what the backlog allows, keep waiting
        leases and the heartbeat."""
        item = self._wait()
        self._poll()
        if item is not None:
            self._last_activity = time.monotonic()
            key, value = item
            waiting = len(self.backlog)
            self._handle(key.decode() if isinstance(key, bytes) else key,
                         value.encode() if isinstance(value, str) else value)
            if len(self.backlog) > waiting:  # hold the newcomers' leases before anything else
                self._hold(list(self.backlog)[waiting:])
        self._dispatch()
        self._hold_waiting()
        self._expire_idle()
        self._heartbeat()

    def _wait(self) -> tuple[bytes, bytes] | None:
        """Wait for the next event (`runtime.pool_events`); the request or control message
        popped, if that was one."""
        sock = self._waiter.arm()
        if sock is None:  # no socket of our own to wait on: block through the client
            item = self.redis.blpop([self.keys.control(self.pool_id), self.keys.requests()],
                                    timeout=POOL_TICK_S)
            if item is None:
                return None
            key, value = item
            return (key if isinstance(key, bytes) else str(key).encode(),
                    value if isinstance(value, bytes) else str(value).encode())
        fds: list[object] = [sock, *(p.sock for p in self.procs.values()
                                     if p.spec is not None and p.sock is not None)]
        if self._exits is not None:
            fds.append(self._exits)
        readable = wait_readable(fds, POOL_TICK_S)
        if self._exits is not None and self._exits in readable:
            self._exits.drain()
        return self._waiter.take() if sock in readable else None

    def _give_up(self, err: BaseException) -> None:
        """Fail every run this server holds work of (busy workers, waiting requests), naming
        the error, so their clients stop at once instead of waiting for leases to expire."""
        specs = [p.spec for p in self.procs.values() if p.spec is not None] + list(self.backlog)
        self.backlog.clear()
        path = log_dir() / "pool.log"
        for spec in specs:
            task_id, record = pool_failure_record(spec, self.pool_id, err, str(path))
            with contextlib.suppress(redis.RedisError):
                report_error(self.redis, RunKeys(spec.namespace, spec.dag_id), task_id, record,
                             RECORD_TTL_S)
        for proc in list(self.procs.values()):
            if proc.spec is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.spec = None  # reported above

    def _hold_waiting(self) -> None:
        """Renew the claim leases of the backlog's workers: waiting for a free process is not
        dying (`runtime.leases`), however long the backlog."""
        now = time.monotonic()
        if not self.backlog or now < self._next_hold:
            return
        self._next_hold = now + LEASE_RENEW_S
        self._hold(list(self.backlog))

    def _hold(self, specs: list[WorkerSpec]) -> None:
        """HOLD the claim leases of `specs` (one script call per run, one pipeline)."""
        by_run: dict[tuple[str, str], list[WorkerSpec]] = {}
        for spec in specs:
            by_run.setdefault((spec.namespace, spec.dag_id), []).append(spec)
        pipe = self.redis.pipeline(transaction=False)
        calls = [hold_call(RunKeys(ns, dag), specs, RECORD_TTL_S)
                 for (ns, dag), specs in by_run.items()]
        for call in calls:
            queue_call(pipe, call)
        replies = pipe.execute(raise_on_error=False)
        for call, reply in zip(calls, replies, strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError):
                call_sync(self.redis, call)
            elif isinstance(reply, Exception):
                raise reply

    def _should_exit(self) -> bool:
        busy = any(p.spec for p in self.procs.values())
        if self.stopping:
            if not busy:
                log.warning("pool %s: exiting (shutdown)", self.pool_id)
            return not busy
        idle_for = time.monotonic() - self._last_activity
        if not self.procs and not self.backlog and idle_for > self.keep_warm_s:
            # said in the log: a pool that leaves while a run still waits must not look like
            # a crash (that run is waiting for a worker nobody asked this pool for)
            log.warning("pool %s: exiting, no request for %.0f s (keep-warm time)", self.pool_id,
                        idle_for)
            return True
        return False

    def _handle(self, key: str, value: bytes) -> None:
        if key == self.keys.requests():
            raw = [value, *(self.redis.lpop(self.keys.requests(), REQUESTS_PER_POP) or [])]
            for item in raw:
                spec = WorkerSpec.from_json(item)
                if spec.namespace != self.keys.namespace:
                    log.error("pool %s: refusing a worker of namespace %r", self.pool_id,
                              spec.namespace)
                elif spec.dag_id not in self.cancelled:
                    self.backlog.append(spec)
            return
        msg = json.loads(value)
        op = msg.get("op")
        if op == "prewarm":
            self._prewarm(msg)
        elif op == "cancel":
            self._cancel(str(msg["dag"]))
            self._reply(str(msg["reply"]), "ok")
        elif op == "wake":  # left by `RequestWaiter.finish` of an earlier server: nothing
            pass
        elif op == "shutdown":
            self.stopping = True
            self._shutdown_reply = msg.get("reply")
            for proc in list(self.procs.values()):
                if proc.spec is None:
                    self._retire(proc)
        else:
            log.warning("pool %s: unknown control message %r", self.pool_id, op)

    # -- processes ----------------------------------------------------------------------------

    def _cap(self) -> int:
        """Most processes right now: `max_processes`, plus one per worker waiting for inputs
        (it lends its slot), at most `WAITING_EXTRA_MAX` more."""
        waiting = sum(1 for p in self.procs.values() if p.waiting)
        return self.max_processes + min(waiting, WAITING_EXTRA_MAX)

    def _dispatch(self) -> None:
        self._set_pressure(self._dispatch_some())

    def _set_pressure(self, pressure: bool) -> None:
        """Tell the busy children whether requests wait at the cap (a child that starts
        waiting then wakes the server to lend its slot at once)."""
        if pressure != self._pressure:
            self._pressure = pressure
            for proc in self.procs.values():
                if proc.slot is not None:
                    proc.slot.pressure = pressure

    def _dispatch_some(self) -> bool:
        """Start what the backlog allows; True when requests are left waiting at the cap."""
        forks = 0
        cap = self._cap()
        while self.backlog and not self.stopping:
            spec = self.backlog[0]
            proc = self._idle(spec)
            if proc is None:
                if len(self.procs) >= cap:
                    self._retire_idle_other(spec.config)
                    return True  # wait for a process to come free
                if forks >= FORKS_PER_TICK:
                    return False  # the rest next iteration
                forks += 1
                proc = self._start_process(spec.config, spec)
            self.backlog.popleft()
            if proc is not None:
                self._assign(proc, spec)
        return False

    def _idle(self, spec: WorkerSpec) -> Process | None:
        idle = [p for p in self.procs.values() if p.spec is None and p.config == spec.config
                and p.sock is not None and not p.retiring]
        if not idle:
            return None
        return max(idle, key=lambda p: (p.last_dag == spec.dag_id, p.idle_since))

    def _start_process(self, config: tuple[int, float], spec: WorkerSpec | None) -> Process | None:
        if self.mode == "spawn":
            if spec is not None:
                self._spawn(spec)
            return None
        slot = StatusSlot()
        pair = socket.socketpair()
        others = [p.sock for p in self.procs.values() if p.sock is not None]
        pid = fork_child(self.url, pair, others, slot,
                         self._exits.fds if self._exits is not None else ())
        self.limiter.apply(pid, *config)
        slot.pressure = self._pressure
        proc = Process(pid, config, pair[0], slot, idle_since=time.monotonic())
        self.procs[pid] = proc
        return proc

    def _spawn(self, spec: WorkerSpec) -> None:
        argv = [sys.executable, "-m", "runtime.worker", "--namespace", spec.namespace,
                "--dag", spec.dag_id, "--worker", spec.worker_id, "--memory-mb",
                str(spec.memory_mb), "--cpus", repr(spec.cpus), "--requested-at",
                repr(spec.requested_at)]
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 env={**os.environ, REDIS_URL_ENV: self.url})
        self.limiter.apply(child.pid, *spec.config)
        self.procs[child.pid] = Process(child.pid, spec.config, None, None, spec, child,
                                        spec.dag_id)

    def _assign(self, proc: Process, spec: WorkerSpec) -> None:
        assert proc.sock is not None
        proc.spec, proc.last_dag = spec, spec.dag_id
        try:
            proc.sock.sendall(spec.to_json().encode() + b"\n")
        except OSError:  # it died meanwhile: reaped (and reported) by _poll
            log.warning("pool %s: process %d gone before its assignment", self.pool_id, proc.pid)

    def _poll(self) -> None:
        """Read the lines of busy processes (`runtime.child`: `done`, `wait`, `run`); reap
        exited ones."""
        busy = {p.sock: p for p in self.procs.values() if p.spec and p.sock is not None}
        if busy:
            readable, _, _ = select.select(list(busy), [], [], 0)
            for sock in readable:
                proc = busy[sock]
                data = b""
                with contextlib.suppress(OSError):
                    data = sock.recv(4096)
                self._lines(proc, data)
        self._enforce_timeouts()
        while self.procs:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            found = self.procs.pop(pid, None)
            if found is not None:
                self._reaped(found, status)

    def _lines(self, proc: Process, data: bytes) -> None:
        *lines, proc.buffer = (proc.buffer + data).split(b"\n")
        for line in lines:
            if line == b"done":
                proc.spec, proc.idle_since = None, time.monotonic()
            # `wait` only wakes the loop: the slot's flag says who waits

    def _reaped(self, proc: Process, status: int) -> None:
        if proc.popen is not None:  # reaped by our waitpid: tell Popen, or it would wait again
            proc.popen.returncode = os.waitstatus_to_exitcode(status)
        spawned_ok = proc.sock is None and os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, 1)
        if proc.spec is not None and not spawned_ok:
            self._report_death(proc, status)
        self.limiter.release(proc.pid)
        with contextlib.suppress(OSError):
            os.unlink(stderr_path(proc.pid))
        if proc.sock is not None:
            proc.sock.close()
        if proc.slot is not None:
            proc.slot.close()

    def _enforce_timeouts(self) -> None:
        """Kill busy processes whose task attempt has passed its deadline (reaped later)."""
        now = time.time()
        for proc in self.procs.values():
            if proc.spec is None or proc.slot is None or proc.timed_out is not None:
                continue
            running = Running.parse(proc.slot.read())
            if running.deadline_at and now > running.deadline_at:
                proc.timed_out = Death("timeout", running.task_id, running.attempt,
                                       running.max_attempts)
                log.warning("pool %s: task %s of %s passed its timeout; killing pid %d",
                            self.pool_id, running.task_id, proc.spec.dag_id, proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)

    def _report_death(self, proc: Process, status: int) -> None:
        """Record, relaunch or fail the dead process's worker (`runtime.deaths`)."""
        assert proc.spec is not None
        running = Running.parse(proc.slot.read() if proc.slot is not None else "")
        new = self.deaths.handle(proc.spec, proc.pid, status, running,
                                 self.limiter.oom_kills(proc.pid) > 0, proc.timed_out)
        if new is not None:
            self.backlog.append(new)

    def _retire(self, proc: Process) -> None:
        """Ask an idle process to exit (reaped later); it is never assigned again."""
        proc.retiring = True
        if proc.sock is not None:
            with contextlib.suppress(OSError):
                proc.sock.sendall(b"exit\n")

    def _retire_idle_other(self, config: tuple[int, float]) -> None:
        """At the process limit with a request waiting for `config`: retire one idle process
        of another configuration, so the slot it holds comes free (else idle processes of
        configurations nobody asks for would starve the backlog until their keep-warm ends)."""
        for proc in self.procs.values():
            if proc.spec is None and proc.config != config and not proc.retiring:
                self._retire(proc)
                return

    def _expire_idle(self) -> None:
        """Retire idle processes past their keep-warm time, and idle ones past the cap (forked
        while a waiting worker lent its slot)."""
        now = time.monotonic()
        excess = len([p for p in self.procs.values() if not p.retiring]) - self._cap()
        for proc in list(self.procs.values()):
            if proc.spec is not None or proc.retiring:
                continue
            if excess > 0 or now - proc.idle_since > self.keep_warm_s:
                excess -= 1
                self._retire(proc)  # asked once; reaped when it exits

    # -- control ------------------------------------------------------------------------------

    def _prewarm(self, msg: dict[str, list[str] | list[list[float]]]) -> None:
        for name in msg.get("modules", []):
            try:
                importlib.import_module(str(name))
            except Exception as err:  # a module the pool cannot import: workers will say why
                log.info("pool %s: cannot preload %s: %s", self.pool_id, name, err)
        gc.freeze()  # see main()
        if self.mode != "fork":
            return
        for entry in msg.get("configs", []):
            memory_mb, cpus, count = (float(x) for x in entry)
            config = (int(memory_mb), cpus)
            idle = sum(1 for p in self.procs.values()
                       if p.spec is None and p.config == config and not p.retiring)
            for _ in range(min(int(count), PREWARM_MAX_PER_CONFIG) - idle):
                if len(self.procs) >= self.max_processes:
                    return
                self._start_process(config, None)

    def _cancel(self, dag_id: str) -> None:
        now = time.time()
        self.cancelled = {d: t for d, t in self.cancelled.items() if now - t < FORGET_CANCELLED_S}
        self.cancelled[dag_id] = now
        self.backlog = deque(s for s in self.backlog if s.dag_id != dag_id)
        doomed = [p for p in self.procs.values() if p.spec and p.spec.dag_id == dag_id]
        for proc in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        for proc in doomed:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)
            proc.spec = None  # killed on purpose: not reported as a failure
            self.procs.pop(proc.pid, None)
            self._reaped(proc, 0)

    def _reply(self, token: str, value: str) -> None:
        reply = self.keys.reply(token)
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(reply, value)
        pipe.expire(reply, RECORD_TTL_S)
        pipe.execute()

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + HEARTBEAT_S
        entry = json.dumps({"pid": os.getpid(), "expires_at": time.time() + ALIVE_TTL_S,
                            "mode": self.mode, **process_identity()})
        with contextlib.suppress(redis.RedisError):
            self.redis.hset(self.keys.alive(), self.pool_id, entry)

    def _exit(self) -> None:
        with contextlib.suppress(redis.RedisError, OSError):  # a request it popped: not lost
            item = self._waiter.finish(self.keys.control(self.pool_id))
            if item is not None and item[0].decode() == self.keys.requests():
                self.redis.lpush(self.keys.requests(), item[1])
        for proc in list(self.procs.values()):
            self._retire(proc)
        deadline = time.monotonic() + SHUTDOWN_WAIT_S
        while self.procs and time.monotonic() < deadline:
            self._poll()
            time.sleep(POOL_TICK_S)
        for proc in list(self.procs.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)
            self.procs.pop(proc.pid, None)
            self._reaped(proc, 0)
        self.limiter.close()
        self.deaths.close()
        if self._exits is not None:
            self._exits.close()
        with contextlib.suppress(redis.RedisError):
            self.redis.hdel(self.keys.alive(), self.pool_id)
            if self._shutdown_reply:
                self._reply(self._shutdown_reply, "bye")
        self.redis.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.pool")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--keep-warm-s", type=float, default=DEFAULT_KEEP_WARM_S)
    parser.add_argument("--mode", choices=("fork", "spawn"), default="fork")
    parser.add_argument("--max-processes", type=int, default=MAX_PROCESSES)
    parser.add_argument("--ready", default=None, help="reply token to signal readiness on")
    parser.add_argument("--env", default="", help="the worker environment this pool serves")
    args = parser.parse_args(argv)
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        print(f"runtime.pool: set {REDIS_URL_ENV}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s pool %(process)d %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the client's: it cancels runs
    # importing the worker machinery here is what makes forked processes start warm; freezing
    # the objects that exist now keeps the garbage collector of forked processes off their
    # pages, which would otherwise be copied (copy-on-write) on a child's first collection
    import runtime.worker  # noqa: F401

    gc.freeze()

    PoolServer(url, args.namespace, keep_warm_s=args.keep_warm_s, mode=args.mode,
               max_processes=args.max_processes, env=args.env).serve(args.ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
