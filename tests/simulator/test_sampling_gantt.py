"""Stochastic mode (lognormal durations, seeded quantiles) and the Gantt chart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simulator import Platform, SimInput, draw_gantt, gantt, simulate, simulate_samples
from simulator.sampling import draw_durations
from tests.simulator import dags


def test_zero_spread_reproduces_the_deterministic_simulation(toy: Platform) -> None:
    summary = simulate_samples(dags.fan_out(), toy, 0.0, samples=5, seed=1)
    exact = simulate(dags.fan_out(), toy)
    assert summary.makespan_s.p50 == summary.makespan_s.p99 == exact.makespan_s
    assert summary.cost_usd.mean == pytest.approx(exact.cost_usd)


def test_same_seed_same_quantiles_and_spread_widens_them(toy: Platform) -> None:
    a = simulate_samples(dags.fan_out(), toy, 0.5, samples=200, seed=7)
    b = simulate_samples(dags.fan_out(), toy, 0.5, samples=200, seed=np.random.default_rng(7))
    assert a.makespan_s == b.makespan_s and a.cost_usd == b.cost_usd
    q = a.makespan_s
    assert q.p50 <= q.p90 <= q.p99
    assert q.p99 > simulate(dags.fan_out(), toy).makespan_s
    assert a.makespans_s.shape == (200,)


def test_lognormal_durations_keep_the_mean_and_the_coefficient_of_variation() -> None:
    mean = np.array([2.0, 10.0, 0.0])
    spread = np.array([0.5, 0.1, 0.5])
    draws = draw_durations(mean, spread, 200_000, np.random.default_rng(0))
    np.testing.assert_allclose(draws.mean(axis=0), mean, rtol=0.01)
    np.testing.assert_allclose(draws[:, :2].std(axis=0) / mean[:2], spread[:2], rtol=0.02)
    assert (draws[:, 2] == 0).all()


def test_gantt_writes_an_image(toy: Platform, tmp_path: Path) -> None:
    inp = dags.fan_out()
    result = simulate(inp, toy)
    path = tmp_path / "run.png"
    draw_gantt(result, inp, path, task_labels=list("abcd"), worker_labels=["w0", "w1", "w2"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_a_wide_plan_shares_rows_and_keeps_a_readable_height(toy: Platform,
                                                              tmp_path: Path) -> None:
    """128 roots on a worker each, joined by a sink on w0: 32 rows of 4 lanes, not 128 rows
    (the image stops growing at MAX_ROWS rows); up to MAX_ROWS workers, one row each."""
    assert [gantt.rows_for(n) for n in (1, 40, 41, 128)] == [1, 1, 2, 4]
    n = 128
    inp = SimInput.build([1.0] * (n + 1), [(i, n) for i in range(n)],
                         output_bytes=[10] * n + [0], worker=[*range(n), 0])
    path = tmp_path / "wide.png"
    draw_gantt(simulate(inp, toy), inp, path, title="wide · uniform plan on toy")
    width, height = _png_size(path)
    most = (gantt.HEADER_INCHES + gantt.MAX_ROWS * gantt.ROW_INCHES + gantt.FOOTER_INCHES)
    assert width == gantt.FIGURE_WIDTH_IN * gantt.DPI and height <= most * gantt.DPI
    assert gantt._subtitle(simulate(inp, toy), n, 4).endswith(
        "4 workers per row (thin lanes), 32 rows")


def test_importing_the_simulator_loads_neither_matplotlib_nor_networkx() -> None:
    code = (
        "import sys, simulator; "
        "assert 'matplotlib' not in sys.modules and 'networkx' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
