"""`local` is this machine (`simulator.host_platform`): CPUs and memory from affinity and cgroups,
the platform derived from them, the per-machine calibration cache, and platform files written
back in the format they are read in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simulator import Platform, load_platform
from simulator import host_platform as hp
from simulator.platform_file import builtin_base, load_platform_file


def facts(cpus: float, memory_mb: int) -> hp.HostFacts:
    return hp.HostFacts(cpus, memory_mb, max(1, int(cpus)), None, "physical")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- CPUs and memory ---------------------------------------------------------------------------


def test_cgroup_v2_quota_and_memory_limit_are_the_tightest_on_the_path(tmp_path: Path) -> None:
    """/sys/fs/cgroup (v2)
    ├── cpu.max "max 100000"             (unlimited at the root)
    └── job/ cpu.max "300000 200000"     (1.5 CPUs)  memory.max 2 GiB
        └── step/ cpu.max "max 100000"   memory.max "max"   <- this process
    """
    root = tmp_path / "cg"
    write(root / "cgroup.controllers", "cpu memory\n")
    write(root / "cpu.max", "max 100000\n")
    write(root / "job" / "cpu.max", "300000 200000\n")
    write(root / "job" / "memory.max", f"{2 << 30}\n")
    write(root / "job" / "step" / "cpu.max", "max 100000\n")
    write(root / "job" / "step" / "memory.max", "max\n")
    proc = write(tmp_path / "proc-cgroup", "0::/job/step\n")
    assert hp.cgroup_cpu_quota(root, proc) == 1.5
    assert hp.cgroup_memory_mb(root, proc) == 2048


def test_cgroup_v1_quota_and_unlimited_memory(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    write(root / "cpu,cpuacct" / "box" / "cpu.cfs_quota_us", "50000\n")
    write(root / "cpu,cpuacct" / "box" / "cpu.cfs_period_us", "100000\n")
    write(root / "memory" / "box" / "memory.limit_in_bytes", "9223372036854771712\n")
    proc = write(tmp_path / "proc-cgroup", "4:memory:/box\n2:cpu,cpuacct:/box\n")
    assert hp.cgroup_cpu_quota(root, proc) == 0.5
    assert hp.cgroup_memory_mb(root, proc) is None


def test_no_quota_and_no_cgroup_mean_unlimited(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    write(root / "cpu" / "cpu.cfs_quota_us", "-1\n")
    write(root / "cpu" / "cpu.cfs_period_us", "100000\n")
    proc = write(tmp_path / "proc-cgroup", "1:cpu:/\n")
    assert hp.cgroup_cpu_quota(root, proc) is None
    assert hp.cgroup_cpu_quota(root, tmp_path / "missing") is None


def test_host_cpus_are_the_affinity_mask_capped_by_the_quota(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(hp, "cgroup_cpu_quota", lambda: None)
    monkeypatch.setattr(hp, "cgroup_memory_mb", lambda: None)
    monkeypatch.setattr(hp, "physical_memory_mb", lambda: 8000)
    assert hp.host_facts() == hp.HostFacts(3.0, 8000, 3, None, "physical")
    monkeypatch.setattr(hp, "cgroup_cpu_quota", lambda: 1.5)
    monkeypatch.setattr(hp, "cgroup_memory_mb", lambda: 3000)
    assert hp.host_facts() == hp.HostFacts(1.5, 3000, 3, 1.5, "cgroup")
    monkeypatch.setattr(hp, "cgroup_memory_mb", lambda: 99999)  # above physical: not binding
    assert hp.host_facts().memory_mb == 8000


def test_without_affinity_the_cpu_count_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert hp.affinity_cpus() == 6


# -- the derived platform ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpus", "memory_mb", "concurrency"),
    [(2.0, 24000, 8), (16.0, 65536, 64), (0.5, 1500, 4), (8.0, 2048, 8)],
)
def test_derived_local_fits_the_host(cpus: float, memory_mb: int, concurrency: int) -> None:
    local = hp.derive_local(builtin_base("local"), facts(cpus, memory_mb))
    assert local.host_cpus == cpus and local.host_memory_mb == memory_mb
    assert local.memory_sizes[-1] <= memory_mb
    assert all(c.cpus <= cpus for c in local.configs)
    assert local.concurrency_limit == concurrency
    best = local.configs[local.best_config_index]
    assert best.cpus == min(cpus, max(c.cpus for c in local.configs))
    assert "derived" in local.description


def test_a_host_smaller_than_every_size_gets_one_configuration_of_its_memory() -> None:
    local = hp.derive_local(builtin_base("local"), facts(1.0, 200))
    assert local.memory_sizes == (200,) and local.concurrency_limit == 1


def test_local_without_calibration_is_derived_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANFLOW_HOME", str(tmp_path))
    monkeypatch.setitem(hp._derived, "seen", False)
    local = load_platform("local")
    assert hp.was_derived()
    assert local == hp.derive_local(builtin_base("local"), hp.host_facts())


def test_calibration_cache_is_local_on_this_machine_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANFLOW_HOME", str(tmp_path))
    monkeypatch.setitem(hp._derived, "seen", False)
    measured = hp.derive_local(builtin_base("local"), hp.host_facts()).with_overrides(
        cold_start_s=0.123, store_throughput_bps=5e8, description="calibrated"
    )
    path = hp.calibration_path()
    assert path.parent == tmp_path / "calibration"
    write(path, hp.platform_toml(measured, header="test"))
    local = load_platform("local")
    assert (local.name, local.cold_start_s, local.store_throughput_bps) == ("local", 0.123, 5e8)
    assert not hp.was_derived()
    other = hp.MachineIdentity("vm", "id", 2.0, 1000)
    assert hp.MachineIdentity("vm", "id", 4.0, 1000).key != other.key  # resized: not reused
    assert hp.MachineIdentity("vm", "other", 2.0, 1000).key != other.key


def test_a_broken_calibration_names_the_file_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simulator import PlatformError

    monkeypatch.setenv("PLANFLOW_HOME", str(tmp_path))
    path = write(hp.calibration_path(), "cold_start_s = [\n")
    with pytest.raises(PlatformError, match="planflow calibrate") as err:
        load_platform("local")
    assert str(path) in str(err.value) and "not valid TOML" in str(err.value)


def test_a_file_extending_local_extends_this_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANFLOW_HOME", str(tmp_path / "home"))
    mine = write(tmp_path / "mine.toml", 'extends = "local"\nkeep_warm_s = 5\n')
    platform = load_platform(str(mine))
    assert platform.keep_warm_s == 5.0
    assert platform.host_cpus == hp.host_facts().cpus


def test_platform_toml_reads_back_equal(tmp_path: Path) -> None:
    original: Platform = hp.derive_local(builtin_base("local"), facts(1.5, 4096))
    path = write(tmp_path / "p.toml", hp.platform_toml(original, header="two\nlines"))
    assert path.read_text().startswith("# two\n# lines\n")
    back = load_platform_file(path)
    assert back == original and back.description == original.description
    assert load_platform_file(path, name="renamed").name == "renamed"


def test_the_cache_lives_in_the_runtimes_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator reads the cache without importing the runtime: both must name one dir."""
    from runtime import defaults

    names = {defaults.DATA_DIR_ENV, hp.DATA_DIR_ENV}
    assert names == {"PLANFLOW_HOME"}
    assert Path.home() / hp.DEFAULT_DATA_DIR_NAME == defaults.DEFAULT_DATA_DIR
    monkeypatch.setenv("PLANFLOW_HOME", str(tmp_path))
    assert hp.data_dir() == defaults.default_data_dir() == tmp_path
    monkeypatch.delenv("PLANFLOW_HOME")
    assert hp.data_dir() == defaults.default_data_dir()
