"""`simulate(horizon_s=...)`: a run stopped at the horizon is one whose makespan exceeds it;
a run that finishes is exactly the run without a horizon."""

from __future__ import annotations

import pytest

from simulator import simulate
from simulator.engine import BeyondHorizon
from simulator.simulate import _busy_bound
from tests.simulator.test_memo import PLATFORMS, _random_input, _same


@pytest.mark.parametrize("name", sorted(PLATFORMS))
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.9, 0.999999, 1.0, 1.5])
def test_stopped_only_beyond_the_makespan(name: str, seed: int, fraction: float) -> None:
    platform = PLATFORMS[name]
    inp = _random_input(seed)
    full = simulate(inp, platform, memo=None)
    horizon = full.makespan_s * fraction
    try:
        res = simulate(inp, platform, memo=None, horizon_s=horizon)
    except BeyondHorizon:
        assert full.makespan_s > horizon
        return
    _same(res, full)


@pytest.mark.parametrize("name", sorted(PLATFORMS))
def test_far_below_the_makespan_stops(name: str) -> None:
    """The point of it: a horizon well before the end stops the run."""
    inp = _random_input(3)
    full = simulate(inp, PLATFORMS[name], memo=None)
    with pytest.raises(BeyondHorizon):
        simulate(inp, PLATFORMS[name], memo=None, horizon_s=full.makespan_s * 0.5)


@pytest.mark.parametrize("name", sorted(PLATFORMS))
@pytest.mark.parametrize("seed", range(8))
def test_the_static_bound_is_below_the_makespan(name: str, seed: int) -> None:
    """What lets `simulate` stop before any run is a lower bound: a worker's tasks in a row."""
    inp = _random_input(seed, n=200)
    assert _busy_bound(inp) <= simulate(inp, PLATFORMS[name], memo=None).makespan_s
