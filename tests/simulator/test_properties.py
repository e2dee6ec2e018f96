"""Hypothesis properties of `simulate` on random DAGs, placements and optimizations.

"Plain" inputs have no pre-load, every worker on its own configuration (so no container is
reused) and an unlimited concurrency limit: the model is then a pure max-plus system, which an
independent index-order recurrence (`reference_times`) computes, and which is monotone. With
warm reuse, the concurrency queue or a shared pre-load link, greedy decisions can flip (the
package docstring's caveat), so monotonicity is only claimed for plain inputs.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import networkx as nx
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import Platform, ResourceConfig, SimInput, SimResult, SimulatorError, simulate
from tests.simulator.conftest import toy_platform

MAX_TASKS = 10
TOL = 1e-7

settings.register_profile("simulator", deadline=None, max_examples=150)
settings.load_profile("simulator")


def many_configs(**changes: object) -> Platform:
    """The toy platform with one configuration per possible worker: no container reuse."""
    configs = tuple(ResourceConfig(1024 * (i + 1)) for i in range(MAX_TASKS))
    return toy_platform(configs=configs, **changes)


@st.composite
def sim_inputs(draw: st.DrawFn, plain: bool = False, prewarm: bool = True) -> SimInput:
    n = draw(st.integers(1, MAX_TASKS))
    edges: set[tuple[int, int]] = set()
    for v in range(1, n):
        edges |= {(p, v) for p in draw(st.sets(st.integers(0, v - 1), max_size=3))}
    for u in range(n - 1):
        if not any(src == u for src, _ in edges):
            edges.add((u, draw(st.integers(u + 1, n - 1))))
    raw = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    _, worker = np.unique(raw, return_inverse=True)
    w = int(worker.max()) + 1
    times = st.floats(0, 10, allow_nan=False).map(lambda x: round(x, 2))
    sizes = st.sampled_from([0.0, 50.0, 100.0, 250.0])
    prewarms = st.one_of(st.just(math.nan), times) if prewarm else st.just(math.nan)
    return SimInput.build(
        draw(st.lists(times, min_size=n, max_size=n)),
        sorted(edges),
        output_bytes=draw(st.lists(sizes, min_size=n, max_size=n)),
        storage_bytes=draw(st.lists(sizes, min_size=n, max_size=n)),
        worker=worker,
        worker_config=np.arange(w) if plain else draw(st.lists(st.integers(0, 1), min_size=w,
                                                                 max_size=w)),
        worker_prewarm_at_s=draw(st.lists(prewarms, min_size=w, max_size=w)),
        worker_preload=[False] * w if plain else draw(st.lists(st.booleans(), min_size=w,
                                                                max_size=w)),
        delayed_io=draw(st.lists(st.booleans(), min_size=n, max_size=n)),
    )


def reference_times(inp: SimInput, platform: Platform) -> np.ndarray:
    """Done time of every task for a plain input, by the documented recurrence in index order."""
    latency, bandwidth = platform.storage_latency_s, platform.storage_bandwidth_bps
    inputs: dict[int, list[tuple[int, float]]] = defaultdict(list)
    consumers: dict[int, list[int]] = defaultdict(list)
    for p, c, nbytes in zip(inp.edge_src, inp.edge_dst, inp.edge_bytes, strict=True):
        inputs[int(c)].append((int(p), float(nbytes)))
        consumers[int(p)].append(int(c))
    done = np.zeros(inp.n_tasks)
    last_done: dict[int, float] = {}
    for u in range(inp.n_tasks):
        k = int(inp.worker[u])
        remote = [(p, b) for p, b in inputs[u] if inp.worker[p] != k]
        avail = max((done[p] for p, _ in remote), default=0.0)
        if k not in last_done:
            request = min(avail, inp.worker_prewarm_at_s[k]) if remote else 0.0
            if math.isnan(request):
                request = avail
            last_done[k] = request + platform.cold_start(int(inp.worker_config[k]))
        ready = max(last_done[k], avail)
        nbytes = inp.storage_bytes[u] + sum(b for _, b in remote)
        fetch = latency + nbytes / bandwidth if remote or inp.storage_bytes[u] > 0 else 0.0
        finish = ready + fetch + inp.duration_s[u]
        upload = (u == inp.n_tasks - 1 or not inp.delayed_io[u]
                  or any(inp.worker[c] != k for c in consumers[u]))
        done[u] = finish + (latency + inp.output_bytes[u] / bandwidth if upload else 0.0)
        last_done[k] = done[u]
    return done


def longest_duration_path(inp: SimInput) -> float:
    best = inp.duration_s.copy()
    for p, c in sorted(zip(inp.edge_src.tolist(), inp.edge_dst.tolist(), strict=True),
                       key=lambda e: e[1]):
        best[c] = max(best[c], best[p] + inp.duration_s[c])
    return float(best.max())


def check_critical_path(result: SimResult) -> None:
    tl = result.timeline
    nodes = tl.critical_nodes
    n = tl.n_tasks
    assert result.critical_path[-1] == n - 1
    weights: dict[tuple[int, int], float] = {}
    for a, b, wt in zip(tl.edge_src.tolist(), tl.edge_dst.tolist(), tl.edge_weight.tolist(),
                        strict=True):
        weights[a, b] = max(wt, weights.get((a, b), -math.inf))
    length = float(tl.node_base[nodes[0]])
    assert math.isclose(length, tl.node_time[nodes[0]], abs_tol=TOL)
    for a, b in itertools.pairwise(nodes):
        length += weights[a, b]
        assert math.isclose(length, tl.node_time[b], abs_tol=TOL), "path edges must be tight"
    assert math.isclose(length + tl.sink_length_s, result.makespan_s, abs_tol=TOL)
    graph = tl.to_networkx()
    longest = nx.dag_longest_path_length(graph, weight="weight")
    assert math.isclose(longest, result.makespan_s, abs_tol=TOL)


@given(sim_inputs(plain=True))
def test_plain_inputs_match_the_reference_recurrence(inp: SimInput) -> None:
    platform = many_configs()
    result = simulate(inp, platform)
    np.testing.assert_allclose(result.task_done_s, reference_times(inp, platform), atol=TOL)


@given(sim_inputs())
def test_makespan_is_at_least_the_longest_chain_of_durations(inp: SimInput) -> None:
    result = simulate(inp, toy_platform())
    assert result.makespan_s >= longest_duration_path(inp) - TOL
    assert result.makespan_s == result.task_done_s.max()


@given(sim_inputs(plain=True), st.floats(0, 5))
def test_a_bigger_cold_start_never_shortens_the_makespan(inp: SimInput, extra: float) -> None:
    base = simulate(inp, many_configs())
    slower = simulate(inp, many_configs(cold_start_s=1.0 + extra))
    assert slower.makespan_s >= base.makespan_s - TOL
    assert (slower.task_start_s >= base.task_start_s - TOL).all()


@given(sim_inputs())
def test_cost_is_billed_worker_time_times_price_plus_invocations(inp: SimInput) -> None:
    platform = toy_platform(billing_granularity_s=0.25)
    result = simulate(inp, platform)
    memory_gb = np.array([c.memory_mb / 1024 for c in platform.configs])[inp.worker_config]
    span = result.worker_stop_s - result.worker_start_s
    assert (result.worker_billed_s >= span - TOL).all()
    assert (result.worker_billed_s < span + 0.25 + TOL).all()
    assert np.allclose(result.worker_billed_s / 0.25, np.round(result.worker_billed_s / 0.25))
    expected = float(memory_gb @ result.worker_billed_s) * 1.0 + inp.n_workers * 0.25
    assert math.isclose(result.cost_usd, expected, rel_tol=1e-12)
    for k in range(inp.n_workers):
        tasks = np.flatnonzero(inp.worker == k)
        assert result.worker_stop_s[k] == result.task_done_s[tasks[-1]]
        assert result.worker_request_s[k] <= result.worker_start_s[k]
        assert result.worker_ready_s[k] <= result.task_ready_s[tasks[0]] + TOL


@given(sim_inputs())
def test_critical_path_is_tight_and_as_long_as_the_makespan(inp: SimInput) -> None:
    result = simulate(inp, toy_platform())
    check_critical_path(result)
    assert (result.slack_s >= 0).all()
    assert (result.slack_s[list(result.critical_path)] <= TOL).all()


@given(sim_inputs(plain=True, prewarm=False))
def test_critical_path_starts_at_a_root_without_prewarm_or_preload(inp: SimInput) -> None:
    result = simulate(inp, many_configs())
    roots = set(range(inp.n_tasks)) - set(inp.edge_dst.tolist())
    assert result.critical_path[0] in roots
    ordered = [result.task_start_s[u] for u in result.critical_path]
    assert ordered == sorted(ordered)


@given(sim_inputs(plain=True, prewarm=False), st.data())
def test_slack_is_how_much_longer_a_task_may_run(inp: SimInput, data: st.DataObject) -> None:
    """Exact for plain inputs without pre-warm (a pre-warm time caps a worker's request time,
    so running longer than the slack can cost less than the excess)."""
    platform = many_configs()
    result = simulate(inp, platform)
    u = data.draw(st.integers(0, inp.n_tasks - 1))
    for extra, growth in ((result.slack_s[u], 0.0), (result.slack_s[u] + 1.0, 1.0)):
        longer = inp.duration_s.copy()
        longer[u] += extra
        stretched = simulate(SimInput.build(longer, np.c_[inp.edge_src, inp.edge_dst],
                                            output_bytes=inp.output_bytes,
                                            storage_bytes=inp.storage_bytes,
                                            edge_bytes=inp.edge_bytes, worker=inp.worker,
                                            worker_config=inp.worker_config,
                                            worker_prewarm_at_s=inp.worker_prewarm_at_s,
                                            delayed_io=inp.delayed_io), platform)
        assert math.isclose(stretched.makespan_s, result.makespan_s + growth, abs_tol=1e-6)


@given(sim_inputs(plain=True), st.randoms())
def test_worker_numbering_does_not_change_task_times(inp: SimInput, rnd: object) -> None:
    perm = np.arange(inp.n_workers)
    rnd.shuffle(perm)  # type: ignore[attr-defined]
    relabelled = SimInput.build(
        inp.duration_s, np.c_[inp.edge_src, inp.edge_dst], output_bytes=inp.output_bytes,
        storage_bytes=inp.storage_bytes, edge_bytes=inp.edge_bytes, worker=perm[inp.worker],
        worker_config=inp.worker_config[np.argsort(perm)],
        worker_prewarm_at_s=inp.worker_prewarm_at_s[np.argsort(perm)],
        delayed_io=inp.delayed_io,
    )
    a, b = simulate(inp, many_configs()), simulate(relabelled, many_configs())
    np.testing.assert_allclose(a.task_start_s, b.task_start_s, atol=TOL)
    assert math.isclose(a.cost_usd, b.cost_usd, rel_tol=1e-12)


@given(sim_inputs(), st.integers(1, 3))
def test_the_concurrency_limit_holds_or_the_deadlock_is_reported(inp: SimInput, limit: int) -> None:
    try:
        result = simulate(inp, toy_platform(concurrency_limit=limit))
    except SimulatorError as err:
        assert "concurrency limit" in str(err)
        return
    for t in result.worker_start_s:
        alive = (result.worker_start_s <= t) & (result.worker_stop_s > t)
        assert alive.sum() <= limit
    check_critical_path(result)


@given(sim_inputs())
def test_simulation_is_deterministic(inp: SimInput) -> None:
    a = simulate(inp, toy_platform(), record_events=True)
    b = simulate(inp, toy_platform(), record_events=True)
    assert a.events == b.events
    assert a.critical_path == b.critical_path
