"""Worker environments: one virtual environment per pinned requirement set, prepared before a run.

A plan's `requirements` are pinned at compile time (`planner.requirements`). Before the local
launcher starts any worker of such a plan, `prepare` makes sure an environment with exactly that
set exists, and the run's pool server (and so every worker it forks) runs its interpreter:

- the environment lives in `<PLANFLOW_HOME>/envs/<key>`, the key a hash of the pinned set, the
  Python version and the interpreter that builds it; it is built once and reused by every later
  run of any plan with the same set (`cached`);
- it is built with `python -m venv --system-site-packages`, then sees this interpreter's own
  site-packages too (a `.pth` file adds them after its own), so planflow and everything
  installed here is importable, and `pip install --no-index` of the pinned set finds them
  already satisfied: no network is needed, and none is used. A pinned package that is not
  installable from what is here (another version than the one installed, a package removed
  since the compile) fails the preparation, naming it, before the run starts;
- builds are serialised per key by a file lock (two runs preparing the same set build it once),
  in a temporary directory renamed into place, so a half-built environment is never used;
- the time it took is reported (`RunResult.prepare_s`, `planflow run --json`), never hidden in
  the first task.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import site
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from planner.requirements import RequirementError
from runtime.defaults import default_data_dir

ENVS_DIR_NAME = "envs"
"""Directory of `$PLANFLOW_HOME` holding the prepared environments."""

READY_FILE = "planflow-env.json"
"""Written last into a prepared environment: its key, pinned set and build time."""

PARENT_PTH = "_planflow_parent.pth"
"""The `.pth` file that adds the building interpreter's site-packages to the environment."""

BUILD_TIMEOUT_S = 600.0
"""Longest a venv creation or pip install may take before the preparation fails."""

_NOT_FOUND = re.compile(
    r"(?:No matching distribution found for|Could not find a version "
    r"that satisfies the requirement) (\S+)"
)


class EnvironmentPreparationError(RequirementError):
    """A requirement set whose environment cannot be built here (names the package)."""


@dataclass(frozen=True)
class Prepared:
    """A ready environment: its interpreter, key, directory, and what preparing it cost."""

    python: str
    key: str
    path: str
    requirements: tuple[str, ...]
    prepare_s: float
    cached: bool

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "path": self.path,
            "requirements": list(self.requirements),
            "prepare_s": self.prepare_s,
            "cached": self.cached,
        }


def environment_key(requirements: Sequence[str]) -> str:
    """The cache key of a pinned set on this interpreter."""
    doc = {
        "python": sys.version,
        "executable": sys.executable,
        "requirements": sorted(requirements),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def prepare(requirements: Sequence[str], data_dir: Path | None = None) -> Prepared:
    """The environment of `requirements` (pinned), built unless it is cached."""
    t0 = time.perf_counter()
    key = environment_key(requirements)
    root = (data_dir or default_data_dir()) / ENVS_DIR_NAME
    target = root / key
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{key}.lock"):
        cached = (target / READY_FILE).is_file()
        if not cached:
            _build(target, tuple(requirements), key)
    return Prepared(
        str(_python_of(target)),
        key,
        str(target),
        tuple(requirements),
        time.perf_counter() - t0,
        cached,
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _python_of(env: Path) -> Path:
    return env / "bin" / "python"


def _build(target: Path, requirements: tuple[str, ...], key: str) -> None:
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _run(
            [sys.executable, "-m", "venv", "--system-site-packages", str(tmp)],
            "creating the environment",
            requirements,
        )
        python = _python_of(tmp)
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=BUILD_TIMEOUT_S,
        ).stdout.strip()
        parents = [
            p for p in [*site.getsitepackages(), site.getusersitepackages()] if os.path.isdir(p)
        ]
        Path(purelib, PARENT_PTH).write_text(
            "import site; " + "; ".join(f"site.addsitedir({p!r})" for p in parents) + "\n"
        )
        if requirements:
            _run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--no-index",
                    "--no-input",
                    "--disable-pip-version-check",
                    "-q",
                    *requirements,
                ],
                "installing the requirements",
                requirements,
            )
        (tmp / READY_FILE).write_text(
            json.dumps({"key": key, "requirements": list(requirements), "built_at": time.time()})
        )
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(argv: list[str], doing: str, requirements: tuple[str, ...]) -> None:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise EnvironmentPreparationError(
            f"preparing the workers' environment: {doing} took over {BUILD_TIMEOUT_S:g} s"
        ) from None
    if done.returncode == 0:
        return
    found = _NOT_FOUND.search(done.stderr)
    tail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
    if found:
        raise EnvironmentPreparationError(
            f"preparing the workers' environment: requirement '{found.group(1)}' cannot be "
            "installed here (no network is used: install it in this environment, then compile "
            f"the workflow again); pip said: {tail[0]}"
        )
    raise EnvironmentPreparationError(
        f"preparing the workers' environment ({', '.join(requirements) or 'no packages'}): "
        f"{doing} failed: {tail[0]}"
    )
