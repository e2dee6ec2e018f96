"""`planflow calibrate` as a user meets it: `--quick` probes of this machine (real embedded Redis,
real local-pool workers), one JSON object with `--json`, a platform file that loads, the cache
`local` is loaded from afterwards, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planflow.cli import app
from planner.errors import UsageError
from simulator import host_platform as hp
from simulator import load_platform


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("calibrate-home")


@pytest.fixture(scope="module")
def calibrated(home: Path) -> tuple[dict[str, Any], str]:
    """One `planflow calibrate --quick --json -o FILE` in a fresh PLANFLOW_HOME; its JSON and
    stderr."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLANFLOW_HOME", str(home))
        res = CliRunner().invoke(
            app, ["calibrate", "--quick", "--json", "-o", str(home / "out.toml")]
        )
    assert res.exit_code == 0, res.stderr + res.stdout
    return json.loads(res.stdout), res.stderr  # exactly one JSON object on stdout


def test_json_is_one_object_with_measured_and_assumed_figures(
    calibrated: tuple[dict[str, Any], str],
) -> None:
    doc, stderr = calibrated
    measured = doc["measured"]
    for key in (
        "cold_start_s",
        "warm_start_s",
        "plan_download_s",
        "storage_latency_s",
        "storage_bandwidth_bps",
        "store_throughput_bps",
        "store_op_s",
        "shm_bandwidth_bps",
        "fork_s",
        "store_requests_per_s",
    ):
        assert measured[key] > 0, key
    assert measured["warm_start_s"] < measured["cold_start_s"]
    assert [s["nbytes"] for s in doc["store_by_size"]] == [1 << 10, 64 << 10, 1 << 20, 16 << 20]
    assert doc["host"]["cpus"] == hp.host_facts().cpus
    assert doc["platform"]["host_cpus"] == doc["assumed"]["host_cpus"] == doc["host"]["cpus"]
    assert doc["platform"]["store_throughput_bps"] == measured["store_throughput_bps"]
    assert doc["cpu_quotas"][0]["requested_cpus"] == 0.5
    assert doc["cpu_quotas"][0]["enforcement"] in ("cgroup", "none")
    assert "calibrate: store" in stderr  # progress goes to stderr


def test_writes_a_platform_file_that_loads_and_caches_it_for_local(
    calibrated: tuple[dict[str, Any], str], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc, _ = calibrated
    monkeypatch.setenv("PLANFLOW_HOME", str(home))
    cache = hp.calibration_path()
    assert doc["written"] == [str(cache), str(home / "out.toml")]
    out = load_platform(str(home / "out.toml"))
    assert out.cold_start_s == doc["measured"]["cold_start_s"]
    monkeypatch.setitem(hp._derived, "seen", False)
    local = load_platform("local")  # the cache hit: measured, not derived
    assert local.name == "local" and local == load_platform(str(cache)).with_overrides(name="local")
    assert local.store_op_s == doc["measured"]["store_op_s"]
    assert "calibrated" in local.description and not hp.was_derived()


def test_human_output_shows_measured_beside_assumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANFLOW_HOME", str(tmp_path))
    res = CliRunner().invoke(app, ["calibrate", "--quick"])
    assert res.exit_code == 0, res.stderr
    assert "measured" in res.stdout and "assumed before" in res.stdout
    assert "store throughput, all" in res.stdout and "16 MB" in res.stdout
    assert f"wrote {hp.calibration_path()}" in res.stdout.replace("\n", "")


def test_an_unwritable_home_fails_before_measuring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PLANFLOW_HOME", str(blocker / "home"))
    res = CliRunner().invoke(app, ["calibrate", "--quick", "--json"])
    assert res.exit_code == 2
    assert "cannot write the calibration" in res.stderr and "PLANFLOW_HOME" in res.stderr
    assert "calibrate: store" not in res.stderr
    assert json.loads(res.stdout)["error"]["exit_code"] == 2


def test_only_the_local_and_ray_launchers_are_calibrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(`--launcher ray` itself: tests/runtime/test_ray_calibrate.py.)"""
    monkeypatch.setenv("PLANFLOW_HOME", str(tmp_path))
    res = CliRunner().invoke(app, ["calibrate", "--launcher", "thread"])
    assert res.exit_code == 2 and "--launcher thread" in res.stderr
    res = CliRunner().invoke(app, ["calibrate", "--ray-address", "10.0.0.1:6379"])
    assert res.exit_code == 2 and "go with --launcher ray" in res.stderr


def test_the_python_api_checks_the_output_before_measuring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import planflow
    from runtime.calibrate import CalibrationError

    monkeypatch.setenv("PLANFLOW_HOME", str(tmp_path / "home"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    said: list[str] = []
    with pytest.raises(CalibrationError, match="cannot write the calibration to"):
        planflow.calibrate(quick=True, out=blocker / "x.toml", progress=said.append)
    assert said == []  # nothing was measured
    with pytest.raises(CalibrationError, match="cannot write the calibration to"):
        planflow.calibrate(launcher="ray", quick=True, out=blocker / "x.toml")
    with pytest.raises(UsageError, match="local or ray"):
        planflow.calibrate(launcher="thread")
    with pytest.raises(UsageError, match="go with launcher='ray'"):
        planflow.calibrate(ray_address="10.0.0.1:6379")


def test_the_link_fit_recovers_latency_and_bandwidth() -> None:
    from runtime.host_probes import SizeTiming, fit_link

    latency, bandwidth = 50e-6, 400e6
    timings = [SizeTiming(n, 0.0, latency + n / bandwidth, 1) for n in (1 << 10, 1 << 20, 16 << 20)]
    fitted = fit_link(timings)
    assert fitted == pytest.approx((latency, bandwidth), rel=1e-6)
    flat = [SizeTiming(n, 0.0, 1e-3, 1) for n in (1 << 10, 1 << 20)]  # no slope: worst case
    assert fit_link(flat) == pytest.approx((1e-3, (1 << 20) / 1e-3))
