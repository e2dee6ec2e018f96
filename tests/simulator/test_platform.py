"""Platform model: built-ins, TOML files that define or extend a platform, errors naming fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator import Platform, PlatformError, ResourceConfig, load_platform


def test_lambda_builtin_has_aws_prices_and_the_memory_ladder() -> None:
    aws = load_platform("lambda")
    assert aws.price_per_gb_s == 0.0000166667
    assert aws.price_per_invocation == pytest.approx(0.20 / 1_000_000)
    assert aws.billing_granularity_s == 0.001
    assert aws.memory_sizes[0] == 128 and aws.memory_sizes[-1] == 10240
    assert aws.configs[aws.config_index(1769)].cpus == 1.0
    assert aws.configs[aws.config_index(3538)].cpus == 2.0
    assert 0.25 <= aws.cold_start(0) <= 0.5 and aws.warm_start(0) == 0.01
    assert aws.concurrency_limit == 1000
    assert aws.best_config_index == len(aws.configs) - 1


def test_local_builtin_fits_this_machine_and_costs_like_lambda() -> None:
    from simulator.host_platform import host_facts

    local, host = load_platform("local"), host_facts()
    assert max(c.cpus for c in local.configs) <= host.cpus
    if 3538 in local.memory_sizes:  # two CPUs by the Lambda rule, fewer on a smaller host
        assert local.configs[local.config_index(3538)].cpus == min(2.0, host.cpus)
    assert local.host_cpus == host.cpus and local.host_memory_mb == host.memory_mb
    assert local.memory_sizes[-1] <= host.memory_mb
    assert local.price_per_gb_s == load_platform("lambda").price_per_gb_s
    assert local.storage_latency_s < 0.001 and local.storage_bandwidth_bps >= 1e9
    assert local.concurrency_limit >= 4


def test_cpus_follow_the_lambda_rule_unless_overridden() -> None:
    assert ResourceConfig(885).cpus == pytest.approx(0.5, abs=1e-3)
    assert ResourceConfig(20000).cpus == 6.0
    assert ResourceConfig(1024, cpus=4).cpus == 4


def test_per_configuration_start_up_overrides_the_platform(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'extends = "lambda"\n'
        'configs = [512, { memory_mb = 2048, cpus = 1.5, cold_start_s = 2.0 }]\n'
    )
    mine = load_platform(str(path))
    assert mine.name == "mine"
    assert mine.memory_sizes == (512, 2048)
    assert mine.cold_start(0) == 0.35 and mine.cold_start(1) == 2.0
    assert mine.configs[1].cpus == 1.5
    assert mine.price_per_gb_s == load_platform("lambda").price_per_gb_s


def test_a_file_can_extend_another_file(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text('extends = "local"\ncold_start_s = 0.5\n')
    (tmp_path / "child.toml").write_text('extends = "base.toml"\nkeep_warm_s = 0\n')
    child = load_platform(str(tmp_path / "child.toml"))
    assert (child.name, child.cold_start_s, child.keep_warm_s) == ("child", 0.5, 0.0)
    assert child.configs == load_platform("local").configs


def test_a_standalone_file_defines_a_platform(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(
        'name = "tiny"\nprice_per_gb_s = 1.0\nprice_per_invocation = 0\ncold_start_s = 1\n'
        "warm_start_s = 0.1\nkeep_warm_s = 60\nstorage_latency_s = 0.01\n"
        "storage_bandwidth_bps = 1e6\nconcurrency_limit = 4\nconfigs = [2048, 1024]\n"
    )
    tiny = load_platform(str(path))
    assert tiny.memory_sizes == (1024, 2048)  # sorted by memory
    assert tiny.billing_granularity_s == 0.001


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('extends = "lambda"\ncold_start = 1\n', "cold_start"),
        ('extends = "lambda"\nprice_per_gb_s = "cheap"\n', "price_per_gb_s"),
        ('extends = "lambda"\nprice_per_gb_s = -1.0\n', "price_per_gb_s"),
        ('extends = "lambda"\nconcurrency_limit = 0\n', "concurrency_limit"),
        ('extends = "lambda"\nconcurrency_limit = true\n', "concurrency_limit"),
        ('extends = "lambda"\nconcurrency_limit = 2.5\n', "concurrency_limit"),
        ('extends = "lambda"\nstorage_bandwidth_bps = 0\n', "storage_bandwidth_bps"),
        ('extends = "lambda"\nconfigs = []\n', "configs"),
        ('extends = "lambda"\nconfigs = [0]\n', "configs[0]"),
        ('extends = "lambda"\nconfigs = [{ memory_mb = 512, gpus = 1 }]\n', "configs[0].gpus"),
        ('extends = "lambda"\nconfigs = [{ cpus = 1 }]\n', "configs[0].memory_mb"),
        ('extends = "lambda"\nconfigs = [{ memory_mb = 512, cpus = -1 }]\n', "configs[0].cpus"),
        ('extends = "nowhere"\n', "extends"),
        ('name = "half"\nprice_per_gb_s = 1.0\n', "price_per_invocation"),
    ],
)
def test_invalid_files_name_the_file_and_the_field(tmp_path: Path, body: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(PlatformError) as info:
        load_platform(str(path))
    assert str(path) in str(info.value)
    assert f"'{field}'" in str(info.value)


def test_invalid_toml_syntax_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("price_per_gb_s = = 1\n")
    with pytest.raises(PlatformError, match=r"broken\.toml: not valid TOML"):
        load_platform(str(path))


def test_extends_cycles_are_reported(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(PlatformError, match="cycle"):
        load_platform(str(tmp_path / "a.toml"))


def test_unknown_platform_lists_the_builtins() -> None:
    with pytest.raises(PlatformError, match="lambda, local"):
        load_platform("azure")


def test_configuration_lookup(tmp_path: Path) -> None:
    aws = load_platform("lambda")
    assert aws.config_index_at_least(1800) == aws.config_index(2048)
    with pytest.raises(PlatformError, match="no 1000 MB configuration"):
        aws.config_index(1000)
    with pytest.raises(PlatformError, match="largest is 10240 MB"):
        aws.config_index_at_least(20000)


def test_direct_construction_is_validated() -> None:
    aws = load_platform("lambda")
    with pytest.raises(PlatformError, match="keep_warm_s"):
        aws.with_overrides(keep_warm_s=-1)
    with pytest.raises(PlatformError, match="repeat"):
        aws.with_overrides(configs=(ResourceConfig(128), ResourceConfig(128)))
    assert isinstance(aws.with_overrides(cold_start_s=2.0), Platform)
    assert aws.transfer_time(80e6) == pytest.approx(aws.storage_latency_s + 1.0)
