"""Serving the dashboard: uvicorn in the foreground (`planflow dashboard`) or on a thread beside
a run (`planflow run --dashboard`).

Binds 127.0.0.1 unless told otherwise: the dashboard has no login, and what it shows (task
errors and tracebacks, function names, timings) is the user's. Port 0 picks a free port. A port
already taken is a clear error naming the port and the option, before anything starts.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from planflow.dashboard.pages import DASHBOARD_EXTRA
from planner.errors import UsageError

DEFAULT_HOST = "127.0.0.1"
"""Address the dashboard listens on by default (this machine only)."""

DEFAULT_PORT = 8765
"""Port of `planflow dashboard` unless --port names another."""

START_TIMEOUT_S = 10.0
"""How long `BackgroundServer.start` waits for uvicorn to listen."""

STOP_TIMEOUT_S = 5.0
"""How long `BackgroundServer.stop` waits for uvicorn to finish open responses."""


def require_stack() -> None:
    """UsageError naming the extra to install unless starlette, uvicorn and plotly import."""
    missing = []
    for module in ("starlette", "uvicorn", "plotly"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise UsageError(f"the dashboard needs {', '.join(missing)}: "
                         f"pip install '{DASHBOARD_EXTRA}'")


def free_port(host: str, port: int) -> int:
    """`port` if it can be bound on `host` (0: any free port), else a UsageError."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as err:
            raise UsageError(f"cannot listen on {host}:{port} ({err.strerror}); choose another "
                             "port with --port (0 picks a free one)") from None
        return int(s.getsockname()[1])


def open_streams(app: Any) -> int:
    """Live run pages the app is streaming to now (`planflow.dashboard.app`)."""
    return int(getattr(app.state, "live_streams", 0))


def _server(app: Any, host: str, port: int) -> Any:
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=int(STOP_TIMEOUT_S))
    return uvicorn.Server(config)


def serve(app: Any, host: str, port: int) -> None:
    """Serve `app` until interrupted (Ctrl-C)."""
    _server(app, host, port).run()


@dataclass
class BackgroundServer:
    """uvicorn on a daemon thread; `url` once `start` returned."""

    app: Any
    host: str
    port: int
    _server: Any = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._server = _server(self.app, self.host, self.port)
        # uvicorn installs no signal handlers off the main thread: Ctrl-C stays the run's
        self._thread = threading.Thread(target=self._server.run, name="dashboard",
                                        daemon=True)
        self._thread.start()
        give_up = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > give_up:
                raise UsageError(f"the dashboard did not start on {self.url}")
            time.sleep(0.02)
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout_s: float) -> None:
        """Block until the server stops or `timeout_s` passes."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    def stop(self, grace_s: float = 0.0) -> None:
        """Stop serving; first wait (at most `grace_s`) until no live page is still open."""
        give_up = time.monotonic() + grace_s
        while open_streams(self.app) and time.monotonic() < give_up:
            time.sleep(0.05)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S + 1.0)
