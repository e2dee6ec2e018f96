"""Plan files: round trip, self-containment (runs where the module is absent), clear errors for
another schema version, truncated files and files that are not plans."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from planner.compiler import compile_graph
from planner.errors import PlanFileError
from planner.loader import load_graph
from planner.plan import PLAN_SCHEMA_VERSION, load_plan, read_plan_json
from runtime.inline import run_inline

MODULE = textwrap.dedent('''
    from planflow import task, workflow

    SCALE = 3

    def helper(x):
        return x * SCALE

    @task
    def square(x: int) -> int:
        return helper(x) * x

    @task
    def pair_sum(parts: dict) -> int:
        return sum(parts["xs"]) + parts["y"]

    @workflow
    def wf(n: int = 4):
        xs = [square(i) for i in range(n)]
        return pair_sum({"xs": xs, "y": square(10)})
''')


def expected(n: int) -> int:
    return sum(3 * i * i for i in range(n)) + 300


@pytest.fixture()
def plan_file(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "my_wf.py").write_text(MODULE)
    plan = compile_graph(load_graph(str(src / "my_wf.py"), {"n": "5"}))
    out = plan.save(tmp_path / "wf.plan")
    shutil.rmtree(src)  # the module is gone: the plan must carry the code
    return out


def test_round_trip_runs_inline_with_the_direct_result(plan_file: Path):
    plan = load_plan(plan_file)
    assert run_inline(plan).result == expected(5)
    assert plan.graph.params == {"n": 5}
    doc = read_plan_json(plan_file)
    assert doc["workflow"] == "wf"
    assert [t["id"] for t in doc["tasks"]] == list(plan.graph.topological_order())
    assert {t["worker"] for t in doc["tasks"]} == {w.worker_id for w in plan.workers}


def test_plan_runs_in_a_fresh_interpreter_without_the_module(plan_file: Path, tmp_path: Path):
    code = ("import sys; from planner.plan import load_plan; from runtime.inline import run_inline;"
            "print(run_inline(load_plan(sys.argv[1])).result)")
    out = subprocess.run([sys.executable, "-c", code, str(plan_file)], capture_output=True,
                         text=True, cwd=tmp_path, check=True)
    assert out.stdout.strip() == str(expected(5))


def _rewrite_json(path: Path, change) -> None:
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    doc = json.loads(members["plan.json"])
    change(doc)
    members["plan.json"] = json.dumps(doc).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_other_schema_version_is_refused(plan_file: Path):
    _rewrite_json(plan_file, lambda d: d.update(schema_version=PLAN_SCHEMA_VERSION + 1))
    with pytest.raises(PlanFileError, match=f"schema version {PLAN_SCHEMA_VERSION + 1}"):
        load_plan(plan_file)


def test_version_1_plans_are_refused_naming_what_changed(plan_file: Path):
    _rewrite_json(plan_file, lambda d: d.update(schema_version=1))
    with pytest.raises(PlanFileError, match=r"version 1 do not carry their platform.*Compile"):
        load_plan(plan_file)


def test_the_plan_carries_every_field_of_its_platform(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from planner.options import CompileOptions
    from simulator import load_platform

    toml = tmp_path / "mine.toml"
    toml.write_text('extends = "lambda"\nname = "mine"\nkeep_warm_s = 7\nhost_cpus = 3\n'
                    'store_throughput_bps = 5e8\nconfigs = [512, { memory_mb = 2048, cpus = 1.5,'
                    ' cold_start_s = 0.9 }]\n')
    platform = load_platform(str(toml))
    (tmp_path / "my_wf.py").write_text(MODULE)
    plan = compile_graph(load_graph(str(tmp_path / "my_wf.py"), {"n": "3"}),
                         CompileOptions(platform=str(toml)))
    assert plan.platform_spec == platform
    path = plan.save(tmp_path / "wf.plan")
    toml.write_text('extends = "lambda"\nkeep_warm_s = 1\n')  # changed after compiling
    loaded = load_plan(path)
    assert loaded.platform_spec == platform and loaded.platform_spec.keep_warm_s == 7.0
    assert loaded.platform_spec.configs[1].cold_start_s == 0.9
    assert loaded.platform_spec.description == platform.description
    spec = read_plan_json(path)["platform_spec"]
    assert spec["host_cpus"] == 3.0 and spec["configs"][1] == {
        "memory_mb": 2048, "cpus": 1.5, "cold_start_s": 0.9, "warm_start_s": None}


def test_a_bad_platform_in_a_plan_is_named(plan_file: Path):
    _rewrite_json(plan_file, lambda d: d["platform_spec"].update(concurrency_limit=0))
    with pytest.raises(PlanFileError, match=r"platform_spec.*concurrency_limit"):
        load_plan(plan_file)


def test_truncated_plan_is_refused(plan_file: Path):
    data = plan_file.read_bytes()
    plan_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(PlanFileError, match="not a plan file, or it is truncated"):
        load_plan(plan_file)


def test_corrupt_member_is_refused(plan_file: Path):
    data = bytearray(plan_file.read_bytes())
    with zipfile.ZipFile(plan_file) as zf:
        info = zf.getinfo("graph.pkl")
    pos = info.header_offset + 30 + len(info.filename) + 10
    data[pos] ^= 0xFF
    plan_file.write_bytes(bytes(data))
    with pytest.raises(PlanFileError):
        load_plan(plan_file)


def test_a_zip_that_is_not_a_plan(tmp_path: Path):
    path = tmp_path / "x.plan"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(PlanFileError, match="not a plan"):
        load_plan(path)


def test_missing_file(tmp_path: Path):
    with pytest.raises(PlanFileError, match="no such plan file"):
        load_plan(tmp_path / "nope.plan")


def test_a_plan_compiled_for_a_platform_file_finds_it_from_any_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from planner.options import CompileOptions
    from runtime.client import keep_warm_of

    (tmp_path / "mine.toml").write_text('extends = "local"\nname = "mine"\nkeep_warm_s = 7\n')
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_wf.py").write_text(MODULE)
    plan = compile_graph(load_graph(str(tmp_path / "my_wf.py"), {"n": "3"}),
                         CompileOptions(platform="mine.toml"))
    monkeypatch.chdir("/")
    assert plan.platform == "mine"
    assert plan.options["platform"] == str(tmp_path / "mine.toml")
    assert keep_warm_of(plan) == 7.0
