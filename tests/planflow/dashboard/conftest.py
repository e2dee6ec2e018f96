"""Fixtures of the dashboard tests: real runs on the session's Redis, a served dashboard, and
a real browser.

Runs go through the real runtime (worker processes of a local pool owned by this module, shut
down at the end). The browser is the Debian chromium (`.ci/browser-deps` installs it) driven
by Playwright; Playwright never downloads a browser of its own. Without chromium the browser
tests skip on a developer's machine but fail under CI (`CI` set), so they cannot silently stop
running there. Screenshots go to `$PLANFLOW_ARTIFACTS/dashboard` (else a pytest temporary
directory) and the directory is printed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import planflow
from planflow.dashboard.app import create_app
from planflow.dashboard.serve import BackgroundServer, free_port
from runtime.client import run_plan
from runtime.embedded import EmbeddedRedis
from runtime.local import LocalLauncher
from runtime.result import RunResult

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
POOL_KEEP_WARM_S = 60.0


@pytest.fixture(scope="module")
def dash_namespace() -> str:
    return f"testdash{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def launcher(redis_server: EmbeddedRedis, dash_namespace: str,
             planflow_home: Path) -> Iterator[LocalLauncher]:
    pool = LocalLauncher(redis_server.url, dash_namespace, keep_warm_s=POOL_KEEP_WARM_S,
                         shutdown_on_close=True)
    pool.ensure_pool()
    yield pool
    pool.close()


def run_example(url: str, launcher: LocalLauncher, name: str, params: dict[str, str],
                **options: Any) -> RunResult:
    """Compile an example for this machine and run it on the module's pool."""
    plan = planflow.compile(str(EXAMPLES / f"{name}.py"), params, platform="local",
                            redis=url, namespace=launcher.keys.namespace, **options)
    return run_plan(plan, redis_url=url, namespace=launcher.keys.namespace, launcher=launcher,
                    timeout_s=120.0)


@pytest.fixture(scope="module")
def tree_runs(redis_server: EmbeddedRedis, launcher: LocalLauncher) -> list[RunResult]:
    """The tree-reduction example (n=16: 15 tasks) run twice with the planner, once with the
    wukong baseline (the comparison page needs two strategies)."""
    url = redis_server.url
    return [run_example(url, launcher, "tree_reduction", {"n": "16"}),
            run_example(url, launcher, "tree_reduction", {"n": "16"}),
            run_example(url, launcher, "tree_reduction", {"n": "16"}, strategy="wukong")]


@pytest.fixture(scope="module")
def dashboard(redis_server: EmbeddedRedis, dash_namespace: str) -> Iterator[str]:
    """The dashboard app served on a free port; yields its base URL."""
    server = BackgroundServer(create_app(redis_server.url, dash_namespace), "127.0.0.1",
                              free_port("127.0.0.1", 0)).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = os.environ.get("PLANFLOW_ARTIFACTS")
    path = Path(root) / "dashboard" if root else tmp_path_factory.mktemp("dashboard-shots")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {path}")
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian chromium under Playwright (see the module docstring)."""
    missing = []
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        missing.append(f"{CHROMIUM} (run .ci/browser-deps as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("playwright (pip install -e '.[dev]')")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A fresh page whose console errors and uncaught exceptions are collected in
    `page.problems` (tests assert it stays empty)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
           if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    tab.problems = problems
    yield tab
    context.close()


SLEEPY = '''
import time

from planflow import task, workflow


@task
def nap(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x + 1


@workflow
def naps(length: int = 10, seconds: float = 0.8):
    """A chain of `length` sleeping tasks: slow enough to watch."""
    value = 0
    for _ in range(length):
        value = nap(value, seconds)
    return value
'''


@pytest.fixture()
def sleepy_module(tmp_path: Path) -> Path:
    """A workflow module of 10 chained tasks sleeping 0.8 s each (~8 s in all: longer than a
    page takes to load on a busy 2-core machine, so the page opens while the run goes)."""
    path = tmp_path / "naps.py"
    path.write_text(SLEEPY)
    return path
