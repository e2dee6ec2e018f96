"""The per-task CPU clock: host contention is measured as such, apart from the task's own time.
Two processes spinning on one core must each see about half their wall time as contention."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SPIN = """
import json, os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
from runtime.cpuclock import CpuClock
clock = CpuClock()
sys.stdin.readline()  # start together
t0, before = time.perf_counter(), clock.read()
s = 0
for i in range(6_000_000):
    s += i
wall = time.perf_counter() - t0
contention, cpu = clock.between(before, clock.read())
print(json.dumps({"wall": wall, "cpu": cpu, "contention": contention}), flush=True)
"""


@pytest.mark.skipif(not os.path.exists("/proc/thread-self/schedstat"),
                    reason="needs Linux schedstat")
def test_two_spinners_on_one_core_each_see_the_other_as_contention() -> None:
    core = sorted(os.sched_getaffinity(0))[0]
    procs = [subprocess.Popen([sys.executable, "-c", SPIN, str(core)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
             for _ in range(2)]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("\n")
        p.stdin.flush()
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    for r in results:
        # sharing one core evenly: about half the wall time waiting, the rest on the CPU
        assert 0.25 < r["contention"] / r["wall"] < 0.85  # more if others share the core
        assert r["cpu"] + r["contention"] == pytest.approx(r["wall"], rel=0.15)
