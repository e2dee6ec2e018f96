"""SimInput validation: every error names the field (and index) at fault."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from simulator import SimInput, SimulatorError, simulate
from tests.simulator import dags
from tests.simulator.conftest import toy_platform


def test_build_fills_defaults() -> None:
    inp = SimInput.build([1.0, 2.0], [(0, 1)], output_bytes=[10, 20])
    assert inp.worker.tolist() == [0, 1]
    assert inp.edge_bytes.tolist() == [10.0]
    assert np.isnan(inp.worker_prewarm_at_s).all()
    assert (inp.n_tasks, inp.n_edges, inp.n_workers, inp.sink) == (2, 1, 2, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"output_bytes": [1.0]}, "output_bytes has 1 entries, expected 4"),
        ({"duration_s": [1.0, -1.0, 1.0, 1.0]}, r"duration_s\[1\] = -1.0"),
        ({"edge_bytes": [1.0, np.nan, 1.0, 1.0]}, r"edge_bytes\[1\] = nan"),
        ({"edge_dst": [1, 0, 3, 3]}, r"edge 1 \(0 -> 0\) does not go forward"),
        ({"edge_src": [0, 0, 1, 9]}, r"edge_src\[3\] = 9 is out of range"),
        ({"worker": [0, 1, 2, 7]}, r"worker\[3\] = 7 is out of range 0..2"),
        ({"worker": [0, 0, 0, 0]}, "worker 1 has no task"),
        ({"sink": 2}, "the sink must be the last task"),
        ({"worker_prewarm_at_s": [np.nan, -1.0, np.nan]}, r"worker_prewarm_at_s\[1\]"),
        ({"duration_s": [[1.0]]}, "must be 1-D"),
    ],
)
def test_invalid_inputs_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SimulatorError, match=message):
        dataclasses.replace(dags.fan_out(), **change)


def test_a_task_without_consumer_must_be_the_sink() -> None:
    with pytest.raises(SimulatorError, match="task 1 has no consumer"):
        SimInput.build([1, 1, 1], [(0, 2)])


def test_worker_configuration_must_exist_on_the_platform() -> None:
    inp = dataclasses.replace(dags.fan_out(), worker_config=np.array([0, 5, 0]))
    with pytest.raises(SimulatorError, match=r"worker_config\[1\] = 5.*2 configurations"):
        simulate(inp, toy_platform())


def test_a_single_task_plan_simulates() -> None:
    result = simulate(SimInput.build([2.0]), toy_platform(), record_events=True)
    assert result.makespan_s == 1.0 + 2.0 + 0.5  # cold start, run, store the (empty) result
    assert result.critical_path == (0,)
