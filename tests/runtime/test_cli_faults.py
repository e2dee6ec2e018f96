"""`planflow run` under bad input and failures, through `typer.testing.CliRunner`: exit code 2
with a clear message for input that cannot run (plan of another version, corrupt plan, WfFormat
cycle or missing parent, unknown platform field, unreachable Redis - its password never shown),
exit code 1 naming the task, function and exception for a failing task; `--json` still prints
exactly one JSON object, with an `error` object."""

from __future__ import annotations

import json
import socket
import textwrap
import zipfile
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from planflow.cli import app
from tests.runtime.conftest import run_keys

MODULE = textwrap.dedent('''
    from planflow import task, workflow

    @task
    def inc(x: int) -> int:
        return x + 1

    @task(retries=1, retry_backoff_s=0.01)
    def explode(x: int) -> int:
        raise ZeroDivisionError(f"no way ({x})")

    @workflow
    def ok(n: int = 3):
        x = inc(0)
        for _ in range(n - 1):
            x = inc(x)
        return x

    @workflow
    def broken():
        return inc(explode(inc(0)))

    @task
    def blob(n: int) -> bytes:
        return b"x" * n

    @workflow
    def big(n: int = 2_000_000):
        return blob(n)
''')


@pytest.fixture()
def module(tmp_path: Path) -> Path:
    path = tmp_path / "wf_faults.py"
    path.write_text(MODULE)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def compiled(module: Path, tmp_path: Path) -> Path:
    plan = tmp_path / "ok.plan"
    code, _, err = invoke("compile", f"{module}:ok", "-o", str(plan))
    assert code == 0, err
    return plan


def rewrite_plan_json(path: Path, key: str, value: object) -> None:
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    doc = json.loads(members["plan.json"])
    doc[key] = value
    members["plan.json"] = json.dumps(doc).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_a_plan_of_another_version_exits_2(module: Path, tmp_path: Path) -> None:
    plan = compiled(module, tmp_path)
    rewrite_plan_json(plan, "schema_version", 999)
    code, out, err = invoke("run", str(plan), "--inline")
    assert code == 2 and out == ""
    assert "schema version 999" in err and "Traceback" not in err


def test_a_corrupt_plan_exits_2(module: Path, tmp_path: Path) -> None:
    plan = compiled(module, tmp_path)
    plan.write_bytes(plan.read_bytes()[:100])
    code, _, err = invoke("run", str(plan), "--inline")
    assert code == 2
    assert "not a plan file" in err and "Traceback" not in err


def wfformat(tmp_path: Path, parents: dict[str, list[str]]) -> Path:
    tasks = [{"id": t, "name": t, "parents": ps, "children": [], "inputFiles": [],
              "outputFiles": []} for t, ps in parents.items()]
    doc = {"name": "t", "schemaVersion": "1.5", "workflow": {
        "specification": {"tasks": tasks, "files": []},
        "execution": {"makespanInSeconds": 1,
                      "tasks": [{"id": t, "runtimeInSeconds": 0.01} for t in parents]}}}
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(("parents", "message"), [
    ({"a": ["b"], "b": ["a"]}, "cycle"),
    ({"a": ["ghost"]}, "unknown parent 'ghost'"),
], ids=["cycle", "missing-parent"])
def test_a_bad_wfformat_file_exits_2(tmp_path: Path, parents: dict[str, list[str]],
                                     message: str) -> None:
    code, _, err = invoke("run", str(wfformat(tmp_path, parents)), "--inline")
    assert code == 2
    assert message in err and "Traceback" not in err


def test_an_unknown_platform_field_exits_2(module: Path, tmp_path: Path) -> None:
    platform = tmp_path / "odd.toml"
    platform.write_text('extends = "local"\nwarp_drive = true\n')
    code, _, err = invoke("run", f"{module}:ok", "--inline", "--platform", str(platform))
    assert code == 2
    assert "warp_drive" in err and "Traceback" not in err


def test_an_unreachable_redis_exits_2_without_showing_its_password(module: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    code, out, err = invoke("run", f"{module}:ok", "--redis",
                            f"redis://:s3cretpw@127.0.0.1:{port}/0", "--json")
    assert code == 2
    assert f"127.0.0.1:{port}" in err and "***" in err
    assert "s3cretpw" not in err + out
    assert json.loads(out)["error"]["exc_type"] == "StoreError"


def test_a_failing_task_exits_1_naming_it_with_one_json_object(
        module: Path, redis_url: str, namespace: str, client: redis.Redis) -> None:
    code, out, err = invoke("run", f"{module}:broken", "--redis", redis_url, "--namespace",
                            namespace, "--launcher", "thread", "--json")
    assert code == 1
    assert "task 'explode-0' (explode) failed (attempt 2): ZeroDivisionError: no way (1)" in err
    doc = json.loads(out)  # exactly one JSON object
    error = doc["error"]
    assert (error["task_id"], error["function"], error["exc_type"], error["attempt"]) == \
        ("explode-0", "explode", "ZeroDivisionError", 2)
    assert "ZeroDivisionError" in error["traceback"]
    assert error["record_path"] in err and Path(error["record_path"]).exists()
    assert run_keys(client, namespace) == []


@pytest.mark.parametrize("args", [
    ("compile", "no/such/module.py"),
    ("simulate", "no/such/module.py"),
    ("show", "no/such.plan"),
    ("metrics", "show", "no_such_function", "--redis", "redis://127.0.0.1:1/0"),
], ids=lambda a: a[0] if a[0] != "metrics" else "metrics-show")
def test_every_command_prints_one_json_object_when_it_fails(args: tuple[str, ...]) -> None:
    code, out, err = invoke(*args, "--json")
    assert code == 2
    doc = json.loads(out)  # exactly one object, and nothing else on stdout
    assert doc["error"]["exit_code"] == 2 and doc["error"]["message"] in err


def test_a_large_bytes_result_is_summarised_in_json(module: Path, redis_url: str,
                                                   namespace: str) -> None:
    code, out, err = invoke("run", f"{module}:big", "--redis", redis_url, "--namespace",
                            namespace, "--launcher", "thread", "--json")
    assert code == 0, err
    assert len(out) < 10_000
    assert json.loads(out)["result"] == {"type": "bytes", "size": 2_000_000}
