"""Workflows of the runtime tests; each docstring draws its DAG.

Task functions are pickled by value (the module attribute is the @task wrapper), so shared state
lives in the `counters` module, which is pickled by reference.
"""

from __future__ import annotations

import os
import signal
import time

from planflow import task, workflow
from tests.runtime import counters


@task
def inc(x: int) -> int:
    return x + 1


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def counted(name: str, *xs: int) -> int:
    with counters.LOCK:
        counters.CALLS[name] += 1
    return sum(xs)


@task
def pause(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x


@task
def spin(n: int) -> int:
    """CPU-bound: a pure-Python loop of n iterations."""
    acc = 0
    for i in range(n):
        acc += i
    return acc


@task
def fail(x: int) -> int:
    raise ValueError(f"cannot handle {x}")


@task
def die(x: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return x


@task
def split(x: int) -> dict[str, object]:
    return {"pair": (x, x + 1), "items": [x, {"deep": x * 2}]}


@task
def combine(parts: dict[str, object], extra: tuple[int, ...], label: str = "") -> str:
    return f"{label}{parts}|{extra}"


@workflow
def chain(n: int = 10):
    """inc-0 -> inc-1 -> ... -> inc-(n-1)"""
    x = inc(0)
    for _ in range(n - 1):
        x = inc(x)
    return x


@workflow
def fan(width: int = 8):
    """
            inc-0
         /   |   \\
     add-0 add-1 ... add-(width-1)
         \\   |   /
            total-0
    """
    root = inc(0)
    return total([add(root, i) for i in range(width)])


@workflow
def diamond(seconds: float = 0.2):
    """
         inc-0
         /    \\
    counted-0  pause-0 (slow)
         \\    /
        counted-1
    """
    a = inc(1)
    return counted("child", counted("left", a), pause(a, seconds))


@workflow
def nested():
    """split-0 and inc-0 feed combine-0 through nested dicts, tuples and keyword arguments."""
    s = split(3)
    i = inc(4)
    return combine({"s": s, "more": [i, {"again": s}]}, (i, i), label=inc(0))


@workflow
def outputs():
    """Several outputs in a structure: a synthetic `_outputs-0` sink collects them."""
    a = inc(1)
    return {"a": a, "b": [add(a, 2), inc(a)], "c": (total([a, a]),)}


@workflow
def failing(width: int = 3):
    """inc-0 -> fail-0 -> total-0 <- add-* (fail-0 raises; total-0 must never run)"""
    root = inc(0)
    return total([fail(root), *(add(root, i) for i in range(width))])


@workflow
def dying():
    """inc-0 -> die-0 (the worker process kills itself) -> inc-1"""
    return inc(die(inc(0)))


@task
def sleeper(x: int, seconds: float, pidfile: str) -> int:
    """Sleeps; first writes its process id to `pidfile` (if given)."""
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(str(os.getpid()))
    time.sleep(seconds)
    return x


@workflow
def slow(seconds: float = 30.0, pidfile: str = ""):
    """inc-0 -> sleeper-0 (long) -> inc-1"""
    return inc(sleeper(inc(0), seconds, pidfile))


@workflow
def waits_on_a_sleeper(seconds: float, first_pidfile: str, pidfile: str):
    """sleeper-0 (short, writes its pid to `first_pidfile`) -> sleeper-1 (long) -> inc-0:
    placed with sleeper-0 and inc-0 on one worker, that worker waits while sleeper-1 sleeps."""
    return inc(sleeper(sleeper(0, 0.0, first_pidfile), seconds, pidfile))


@task
def spin_timed(n: int) -> tuple[float, float]:
    """CPU-bound loop; returns (CPU seconds, wall seconds) it took, measured inside the task."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    acc = 0
    for i in range(n):
        acc += i
    return time.process_time() - cpu0, time.perf_counter() - wall0


@workflow
def cpu(n: int = 2_000_000):
    """spin_timed-0"""
    return spin_timed(n)


@task
def hog(mb: int) -> int:
    """Allocates (and touches) `mb` MiB."""
    block = b"\x01" * (mb << 20)
    return len(block)


@workflow
def memory_hog(mb: int = 400):
    """inc-0 -> hog-0 (allocates mb MiB)"""
    return hog(inc(mb - 1))


@task
def describe(value: object, extra: object = None) -> str:
    return f"{type(value).__name__}:{value!r}|{extra!r}"


@workflow
def rich_constants():
    """describe-0 gets a Fraction and a frozenset (not plain data: shipped by cloudpickle)."""
    from fractions import Fraction

    return describe(Fraction(1, 3), extra={"s": frozenset({2}), "n": inc(1)})


# -- fault injection (counts attempts in a file: attempts run in different processes) ---------

def bump(path: str) -> int:
    """Add one to the counter in file `path`; returns the new count."""
    try:
        with open(path) as f:
            n = int(f.read() or 0) + 1
    except FileNotFoundError:
        n = 1
    with open(path, "w") as f:
        f.write(str(n))
    return n


@task(retries=3, retry_backoff_s=0.01, retry_on=(ValueError,))
def flaky(x: int, path: str, failures: int) -> int:
    """Raises ValueError on its first `failures` attempts."""
    if bump(path) <= failures:
        raise ValueError(f"attempt failed on purpose ({x})")
    return x * 10


@workflow
def flaky_chain(path: str = "", failures: int = 2):
    """inc-0 -> flaky-0 -> inc-1"""
    return inc(flaky(inc(0), path, failures))


@task(retries=2, retry_backoff_s=0.01)
def always_fails(x: int) -> int:
    raise RuntimeError(f"broken on purpose ({x})")


@workflow
def always_failing(width: int = 3):
    """inc-0 -> always_fails-0 -> total-0 <- add-* (total-0 must never run)"""
    root = inc(0)
    return total([always_fails(root), *(add(root, i) for i in range(width))])


@task(retries=3, retry_backoff_s=0.01, retry_on=(ValueError,))
def wrong_kind(x: int) -> int:
    raise KeyError(f"not retried ({x})")


@workflow
def not_retried():
    """inc-0 -> wrong_kind-0 (raises KeyError; retries only on ValueError)"""
    return wrong_kind(inc(0))


@task(timeout_s=1.0, retries=1)
def stuck_once(x: int, path: str) -> int:
    """Hangs on its first attempt (past its 1 s timeout), returns at once on the next."""
    if bump(path) == 1:
        time.sleep(3600)
    return x + 100


@workflow
def stuck_chain(path: str = ""):
    """inc-0 -> stuck_once-0 -> inc-1"""
    return inc(stuck_once(inc(0), path))


@task(timeout_s=0.5)
def stuck(x: int) -> int:
    time.sleep(3600)
    return x


@workflow
def stuck_forever():
    """inc-0 -> stuck-0 (always past its timeout, no retries)"""
    return stuck(inc(0))


@task
def die_once(x: int, path: str) -> int:
    """SIGKILLs its own process on the first attempt."""
    if bump(path) == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return x + 1


@workflow
def dies_once(path: str = "", width: int = 3):
    """inc-0 -> die_once-0 -> total-0 <- add-* (die_once kills its worker once)"""
    root = inc(0)
    return total([inc(die_once(root, path)), *(add(root, i) for i in range(width))])


@workflow
def tree(leaves: int = 16):
    """A binary in-tree of additions over `leaves` leaves (inc-i):

        inc-0  inc-1  inc-2  inc-3
           \\   /        \\   /
           add-0        add-1
                \\      /
                 add-2
    """
    level = [inc(i) for i in range(leaves)]
    while len(level) > 1:  # an odd one out moves up a level unchanged
        pairs = zip(level[0::2], level[1::2], strict=False)
        level = [add(a, b) for a, b in pairs] + level[len(level) & ~1:]
    return level[0]


@workflow
def chains(width: int = 4, length: int = 4):
    """`width` independent chains of `length` incs, summed by one sink:

        inc-0 -> inc-1 -> ... (length)  \\
        ...                              total-0
        inc-k -> ...                    /
    """
    ends = []
    for i in range(width):
        x = inc(i)
        for _ in range(length - 1):
            x = inc(x)
        ends.append(x)
    return total(ends)


@task
def blob(nbytes: int) -> bytes:
    return b"x" * nbytes


@task
def size_of(data: bytes) -> int:
    return len(data)


@workflow
def big_value(nbytes: int = 1024):
    """blob-0 (returns `nbytes` bytes) -> size_of-0"""
    return size_of(blob(nbytes))


@workflow
def big_result(nbytes: int = 1024):
    """blob-0, whose bytes are the run's result"""
    return blob(nbytes)


@task
def exits(x: int, code: int) -> int:
    import sys

    sys.exit(code)


@workflow
def exiting(code: int = 3):
    """inc-0 -> exits-0 (calls sys.exit(code))"""
    return exits(inc(0), code)


@task
def die_once_each(prev: int, index: int, path: str) -> int:
    """SIGKILL this process the first time task `index` runs (one marker file per index)."""
    marker = f"{path}.{index}"
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return prev + index


@workflow
def each_dies_once(path: str = "", width: int = 3):
    """die_once_each-0 -> die_once_each-1 -> ... (width); each kills its worker once"""
    x = die_once_each(0, 0, path)
    for i in range(1, width):
        x = die_once_each(x, i, path)
    return x


@workflow
def slow_fan(width: int = 8, seconds: float = 0.1):
    """inc-0 -> pause-0..pause-(width-1) (each sleeps `seconds`, returns 1) -> total-0"""
    root = inc(0)
    return total([pause(root, seconds) for _ in range(width)])


@task
def blob_after(x: int, nbytes: int) -> bytes:
    return bytes([x % 256]) * nbytes


@task
def sizes(blobs: list[bytes]) -> int:
    return sum(len(b) for b in blobs)


@workflow
def fan_of_blobs(width: int = 4, nbytes: int = 1024):
    """inc-0 -> blob_after-0..(width-1) (each `nbytes` bytes) -> sizes-0"""
    root = inc(0)
    return sizes([blob_after(root, nbytes) for _ in range(width)])


@task
def fail_at_index(x: int, index: int, fail_at: int) -> int:
    if index == fail_at:
        raise RuntimeError(f"leaf {index} fails")
    return x + index


@workflow
def failing_fan(width: int = 10, fail_at: int = 5):
    """inc-0 -> fail_at_index-0..(width-1) (the one at `fail_at` raises) -> total-0"""
    root = inc(0)
    return total([fail_at_index(root, i, fail_at) for i in range(width)])


@task
def fail_after(blobs: list[bytes]) -> int:
    raise RuntimeError(f"fails after the blobs ({len(blobs)} of them)")


@workflow
def blobs_then_fail(width: int = 2, nbytes: int = 1024):
    """inc-0 -> blob_after-0..(width-1) -> fail_after-0 (raises)"""
    root = inc(0)
    return fail_after([blob_after(root, nbytes) for _ in range(width)])


@task
def size_dying_once(data: bytes, path: str) -> int:
    """SIGKILLs its own process the first time (its input must be found again)."""
    if bump(path) == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return len(data)


@workflow
def blob_then_die_once(nbytes: int = 1024, path: str = ""):
    """blob-0 -> size_dying_once-0 (killed once)"""
    return size_dying_once(blob(nbytes), path)


@task
def hold(data: bytes, seconds: float, pidfile: str) -> int:
    with open(pidfile, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(seconds)
    return len(data)


@workflow
def held(nbytes: int = 2_000_000, seconds: float = 60.0, pidfile: str = ""):
    """blob-0 -> hold-0 (writes its pid to `pidfile`, then sleeps)"""
    return hold(blob(nbytes), seconds, pidfile)


@task
def node_of(i: int, seconds: float) -> str:
    """The id of the Ray node this task ran on ("" outside Ray), after sleeping `seconds` so
    that the tasks of a fan-out overlap."""
    time.sleep(seconds)
    try:
        import ray
    except ImportError:
        return ""
    return str(ray.get_runtime_context().get_node_id()) if ray.is_initialized() else ""


@task
def distinct(xs: list[str]) -> list[str]:
    return sorted(set(xs))


@workflow
def where(width: int = 8, seconds: float = 0.5):
    """node_of-0 ... node_of-(width-1) -> distinct-0 (the Ray nodes the fan-out ran on)"""
    return distinct([node_of(i, seconds) for i in range(width)])


@workflow
def halves(width: int = 8):
    """
     inc-0 ... inc-(w/2-1)   inc-(w/2) ... inc-(w-1)
          \\     |     /           \\      |      /
            total-0                  total-1
                    \\              /
                         add-0
    """
    leaves = [inc(i) for i in range(width)]
    half = width // 2
    return add(total(leaves[:half]), total(leaves[half:]))
