"""Static checks run with the suite, so CI (which runs exactly the README's test command) keeps
the code ruff-clean and type-checked. Marked `lint`: CI's pass against the lowest dependency
versions deselects them (type stubs differ between library versions; the pinned checkers run in
the pass against today's versions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["planflow", "planner", "simulator", "metadata", "runtime"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, check=False)


@pytest.mark.lint
def test_ruff_is_clean() -> None:
    res = _run("ruff", "check", ".")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
@pytest.mark.lint
def test_mypy_is_clean() -> None:
    res = _run("mypy", *PACKAGES)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("script", sorted((ROOT / "benchmarks").glob("*.py")),
                         ids=lambda p: p.name)
def test_benchmark_scripts_compile(script: Path) -> None:
    """Benchmarks run outside the suite; at least they must be valid Python (ruff does not
    report every compile-time error, e.g. a name used before its `global` statement)."""
    compile(script.read_text(), str(script), "exec")
