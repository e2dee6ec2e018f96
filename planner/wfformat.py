"""WfFormat (WfCommons) workflow files -> TaskGraph.

Schema 1.4/1.5 layout: `workflow.specification.tasks` (id, name, parents, children, inputFiles,
outputFiles), `workflow.specification.files` (id, sizeInBytes), `workflow.execution.tasks` (id,
runtimeInSeconds, avgCPU, optional memoryInBytes). The older layout with `workflow.tasks`
carrying `files: [{link, name/id, sizeInBytes}]` and the execution fields inline is read too.

Task model, exactly as specified: p = avgCPU / 100 (1.0 when missing) becomes the task's
`parallelism` hint and runtime its `expected_s`, so that
`duration(cpus) = runtime*max(0, 1-p) + runtime*p/min(cpus, max(p, 1))`; `memoryInBytes` is the
least memory the task needs; an edge carries the bytes of the files the parent writes and the
child reads; files no task writes are read from storage (`storage_bytes`). Each task stays an
ordinary task (`planner.replay.replay`) so a trace can also be executed. Tasks keep the trace's
own ids, so every output (plans, critical paths, errors) names them as the trace does.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from planner.errors import GraphError, UsageError
from planner.graph import TaskCode, TaskGraph, TaskNode
from planner.replay import RecordedTask, replay
from planner.trace import TaskOptions, TaskRef

BYTES_PER_MB = 1024 * 1024
_ID_SUFFIX = re.compile(r"_ID\d+$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:@/+-]{1,200}$")
"""Trace task ids kept as they are (others are renamed `<function>-<n>`, as workflow tasks)."""
REPLAY_KEY = "planner.replay.replay"


def load_wfformat(path: str | Path, time_scale: float = 1.0, data_scale: float = 1.0) -> TaskGraph:
    """Read a WfFormat JSON file into a TaskGraph (errors name the file and the task)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise UsageError(f"{path} is not valid JSON: {err}") from None
    try:
        tasks = _tasks(doc)
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(f"{path} is not a WfFormat file ({type(err).__name__}: {err})") from None
    name = str(doc.get("name") or path.stem)
    return _build(name, tasks, path, time_scale, data_scale)


def _tasks(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Normalised task dicts: id, program, parents, inputs {file: bytes}, outputs, execution."""
    wf = doc["workflow"]
    if "specification" in wf:
        spec = wf["specification"]
        sizes = {f["id"]: float(f.get("sizeInBytes", 0)) for f in spec.get("files", [])}
        execution = {t["id"]: t for t in wf.get("execution", {}).get("tasks", [])}
        out = []
        for t in spec["tasks"]:
            ex = execution.get(t["id"], {})
            out.append({
                "id": t["id"], "name": t.get("name", t["id"]),
                "parents": list(t.get("parents", [])),
                "inputs": {f: sizes.get(f, 0.0) for f in t.get("inputFiles", [])},
                "outputs": {f: sizes.get(f, 0.0) for f in t.get("outputFiles", [])},
                "program": (ex.get("command") or {}).get("program"), "exec": ex})
        return out
    out = []
    for t in wf["tasks"]:
        files = t.get("files", [])
        def pick(link: str, files: list[dict[str, Any]] = files) -> dict[str, float]:
            return {str(f.get("id") or f.get("name")): float(f.get("sizeInBytes", f.get("size", 0)))
                    for f in files if f.get("link") == link}
        out.append({
            "id": t.get("id") or t["name"], "name": t["name"],
            "parents": list(t.get("parents", [])),
            "inputs": pick("input"), "outputs": pick("output"),
            "program": (t.get("command") or {}).get("program"), "exec": t})
    return out


def _function_name(t: Mapping[str, Any]) -> str:
    """The program when it is one word (Pegasus, Makeflow), else the task name without its
    `_ID<n>` suffix and namespace (Nextflow's `PIPELINE.STEP.TOOL` gives `TOOL`)."""
    program = str(t.get("program") or "").strip()
    if program and not any(c.isspace() for c in program):
        raw = Path(program).name
    else:
        raw = _ID_SUFFIX.sub("", str(t["name"])).rsplit(".", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_]+", "_", raw).strip("_") or "task"


def _task_ids(tasks: list[dict[str, Any]], path: Path) -> dict[str, str]:
    """Trace id -> task id: the trace's own id (`split_fasta_ID000001`), so a critical path or
    a failure names the task the trace names; `<function>-<n>` only for an id that cannot
    travel in key names and messages (spaces, control characters, over 200 characters)."""
    ids: dict[str, str] = {}
    taken = {str(t["id"]) for t in tasks if _SAFE_ID.match(str(t["id"]))}
    counters: dict[str, int] = {}
    for t in tasks:
        raw = str(t["id"])
        if raw in ids:
            raise GraphError(f"{path}: duplicate task id '{raw}'")
        if raw in taken:
            ids[raw] = raw
            continue
        fn = _function_name(t)
        n = counters.get(fn, 0)
        while f"{fn}-{n}" in taken:
            n += 1
        ids[raw] = f"{fn}-{n}"
        taken.add(ids[raw])
        counters[fn] = n + 1
    return ids


def _build(name: str, tasks: list[dict[str, Any]], path: Path, time_scale: float,
           data_scale: float) -> TaskGraph:
    ids = _task_ids(tasks, path)
    written = {f for t in tasks for f in t["outputs"]}
    by_id = {t["id"]: t for t in tasks}
    nodes: list[TaskNode] = []
    code: dict[str, TaskCode] = {}
    for t in tasks:
        for parent in t["parents"]:
            if parent not in by_id:
                raise GraphError(f"{path}: task '{t['id']}' has unknown parent '{parent}'")
        parents = list(dict.fromkeys(t["parents"]))
        edge_bytes = tuple(sum(size for f, size in t["inputs"].items()
                               if f in by_id[p]["outputs"]) for p in parents)
        storage = sum(size for f, size in t["inputs"].items() if f not in written)
        ex = t["exec"]
        runtime = float(ex.get("runtimeInSeconds", ex.get("runtime", 0.0)) or 0.0)
        avg_cpu = ex.get("avgCPU")
        p = float(avg_cpu) / 100.0 if avg_cpu is not None else 1.0
        mem = ex.get("memoryInBytes", ex.get("memory"))
        memory_mb = math.ceil(float(mem) / BYTES_PER_MB) if mem else None
        out_bytes = sum(t["outputs"].values())
        fn_name = _function_name(t)
        task_id = ids[t["id"]]
        options = TaskOptions(name=fn_name, expected_s=max(runtime, 1e-6), parallelism=max(p, 1e-3),
                              memory_mb=memory_mb, output_bytes=out_bytes)
        parent_ids = tuple(ids[p] for p in parents)
        nodes.append(TaskNode(task_id, fn_name, f"wfformat:{name}:{fn_name}", options,
                              parent_ids, tuple((pid, ("args", i + 1))
                                                for i, pid in enumerate(parent_ids)),
                              edge_bytes, storage))
        spec = RecordedTask(str(t["id"]), runtime, p, int(out_bytes), time_scale, data_scale)
        code[task_id] = TaskCode(replay, (spec, *(TaskRef(pid, 0) for pid in parent_ids)))
    return TaskGraph.create(name, nodes, code)
