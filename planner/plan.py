"""The Plan: a task graph plus every planning decision, and its self-contained `.plan` file.

A plan file is a zip archive with two members:

- `plan.json`: the readable part (`planflow show --json` prints it): format marker, schema
  version, workflow, strategy, platform (its name, and under `platform_spec` every field of the
  platform it was compiled for: configurations, start-ups, keep-warm, host size, store figures,
  so that `run` and `simulate` never re-read a platform file that may have changed), predicted
  makespan/cost/GB-s, critical path, and per task
  its configuration, worker, predicted start/finish/duration, critical flag, slack,
  optimizations and the reasons the planner gave; per worker its configuration, task order,
  pre-warm and pre-load; per dynamic fan-out (`dynamic`) the width it was planned for, where
  that width came from and how its elements are split over workers (`DynamicPlan`); the
  workflow's `requirements`, pinned at compile time.
- `graph.pkl`: the task graph with its code and constants, pickled with cloudpickle (the
  workflow module's functions by value, so the plan runs where the module is absent).

Loading checks the marker and the schema version before unpickling anything. A plan file is code:
load only plans from a source you trust, as you would a Python module.
"""

from __future__ import annotations

import io
import json
import math
import time
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.errors import PlanFileError
from planner.graph import TaskGraph

if TYPE_CHECKING:
    from simulator.platform import Platform

PLAN_SCHEMA_VERSION = 2
"""Bumped whenever the plan file changes incompatibly; other versions are refused on load.
2: the plan carries its platform (`platform_spec`)."""

SCHEMA_CHANGES = {1: "plans of version 1 do not carry their platform"}
"""Why an older schema version cannot be read, named in the error."""

PLAN_FORMAT = "planflow-plan"
"""Marker in plan.json that tells a plan file from any other zip."""


@dataclass(frozen=True)
class TaskPlan:
    """The decisions for one task."""

    task_id: str
    memory_mb: int
    cpus: float
    worker: str
    pred_start_s: float = 0.0
    pred_finish_s: float = 0.0
    pred_duration_s: float = 0.0
    critical: bool = False
    slack_s: float = 0.0
    optimizations: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    prediction_source: str = "prior"


@dataclass(frozen=True)
class WorkerPlan:
    """One worker: its configuration and the tasks it runs, in order."""

    worker_id: str
    memory_mb: int
    cpus: float
    tasks: tuple[str, ...]
    prewarm_at_s: float | None = None
    preload: bool = False
    pred_start_s: float = 0.0
    pred_stop_s: float = 0.0
    cold: bool = True


@dataclass(frozen=True)
class PlanSummary:
    """Predicted figures of a whole plan (or of a baseline it is compared with)."""

    makespan_s: float
    cost_usd: float
    gb_s: float
    workers: int
    cold_starts: int
    critical_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class Downgrade:
    """One worker the planner moved to a cheaper configuration, with the figures behind it."""

    worker: str
    tasks: tuple[str, ...]
    from_mb: int
    to_mb: int
    slack_s: float | None  # the budget that allowed it; None when no duration grew
    saved_gb_s: float  # GB-s of the worker in the best-everywhere plan minus in this plan
    reason: str


@dataclass(frozen=True)
class DynamicPlan:
    """The decisions for one dynamic fan-out (`planflow.map`; `planner.dynamic_plan`): planned
    for `width` elements (`source`: history, hint or prior), the first `local` of them on the map
    node's worker, the rest `per_worker` to a new worker at `memory_mb`/`cpus`; each element
    predicted to take `pred_element_s` (from `element_source`)."""

    task_id: str
    function: str
    width: int
    source: str
    local: int
    per_worker: int
    memory_mb: int
    cpus: float
    pred_element_s: float = 0.0
    element_source: str = "prior"


@dataclass(frozen=True)
class Plan:
    """A compiled workflow. `tasks` follows the graph's topological order."""

    graph: TaskGraph
    strategy: str
    platform: str
    tasks: Mapping[str, TaskPlan]
    workers: tuple[WorkerPlan, ...]
    summary: PlanSummary
    baseline: PlanSummary | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    created_at: float = field(default_factory=time.time)
    schema_version: int = PLAN_SCHEMA_VERSION
    downgrades: tuple[Downgrade, ...] = ()
    prediction_sources: Mapping[str, int] = field(default_factory=dict)
    planning: Mapping[str, Any] = field(default_factory=dict)
    platform_spec: Platform | None = None
    """The platform the plan was compiled for, every field. `compile` always sets it; None
    only in plans built by hand (tests, benchmarks): see `platform_of`."""
    dynamic: Mapping[str, DynamicPlan] = field(default_factory=dict)
    requirements: tuple[str, ...] = ()
    """The workflow's requirements pinned at compile time (`planner.requirements`)."""

    @property
    def workflow(self) -> str:
        return self.graph.workflow

    def worker(self, worker_id: str) -> WorkerPlan:
        for w in self.workers:
            if w.worker_id == worker_id:
                return w
        raise KeyError(worker_id)

    def to_json(self) -> dict[str, Any]:
        """The readable part of the plan, with DESIGN.md's stable keys."""
        graph = self.graph
        return {
            "format": PLAN_FORMAT,
            "schema_version": self.schema_version,
            "workflow": self.workflow,
            "strategy": self.strategy,
            "platform": self.platform,
            "platform_spec": None if self.platform_spec is None else self.platform_spec.to_dict(),
            "created_at": self.created_at,
            "params": {k: jsonable(v) for k, v in graph.params.items()},
            "makespan_s": self.summary.makespan_s,
            "cost_usd": self.summary.cost_usd,
            "gb_s": self.summary.gb_s,
            "critical_path": list(self.summary.critical_path),
            "cold_starts": self.summary.cold_starts,
            "baseline": _summary_json(self.baseline) if self.baseline else None,
            "options": {k: jsonable(v) for k, v in self.options.items()},
            "notes": list(self.notes),
            "prediction_sources": dict(self.prediction_sources),
            "planning": {k: jsonable(v) for k, v in self.planning.items()},
            "downgrades": [_downgrade_json(d) for d in self.downgrades],
            "dynamic": {k: asdict(d) for k, d in self.dynamic.items()},
            "requirements": list(self.requirements),
            "sink": graph.sink,
            "dropped": list(graph.dropped),
            "workers": [_worker_json(w) for w in self.workers],
            "tasks": [
                {
                    "id": node.id,
                    "function": node.function,
                    "function_key": node.function_key,
                    "upstream": list(node.upstream),
                    **_task_json(self.tasks[node.id]),
                }
                for node in graph.nodes
            ],
        }

    # -- the file ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        import cloudpickle

        path = Path(path)
        graph_blob = cloudpickle.dumps(self.graph)
        payload = dumps_plan_json(self.to_json())
        tmp = path.with_name(path.name + ".tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("plan.json", payload)
            zf.writestr("graph.pkl", graph_blob)
        tmp.replace(path)  # never leave a half-written plan under the real name
        return path


def dumps_plan_json(doc: Mapping[str, Any]) -> str:
    """The plan document as `plan.json`: one key per line, and in the long lists (`tasks`,
    `workers`) one compact entry per line. The same JSON value as `json.dumps(doc, indent=1)`;
    the entries go through json's C encoder, which an indent turns off (3x slower)."""
    def encode(value: Any) -> str:
        return json.dumps(value, allow_nan=False)

    lines = []
    for key, value in doc.items():
        if key in LONG_LISTS and isinstance(value, list) and value:
            items = ",\n  ".join(encode(item) for item in value)
            lines.append(f" {encode(key)}: [\n  {items}\n ]")
        else:
            lines.append(f" {encode(key)}: {json.dumps(value, indent=1, allow_nan=False)}")
    return "{\n" + ",\n".join(lines) + "\n}"


LONG_LISTS = ("tasks", "workers")
"""Plan document keys written one entry per line (`dumps_plan_json`)."""


def platform_of(plan: Plan) -> Platform | None:
    """The platform `plan` carries; for a plan built by hand without one, the built-in platform
    it names (shipped with planflow, never a user's file), else None."""
    if plan.platform_spec is not None:
        return plan.platform_spec
    from simulator.platform import load_platform
    from simulator.platform_file import BUILTIN_NAMES

    return load_platform(plan.platform) if plan.platform in BUILTIN_NAMES else None


def read_plan_json(path: str | Path) -> dict[str, Any]:
    """The readable part of a plan file, checked for format and schema version."""
    with _open_zip(path) as zf:
        return _checked_json(zf, path)


def load_plan(path: str | Path) -> Plan:
    """Load a `.plan` file. Raises PlanFileError naming the file and what is wrong with it."""
    import cloudpickle

    with _open_zip(path) as zf:
        doc = _checked_json(zf, path)
        try:
            graph = cloudpickle.loads(zf.read("graph.pkl"))
        except Exception as err:
            raise PlanFileError(f"{path}: the plan's code cannot be loaded ({err}); "
                                "it may be truncated or need a module that is missing") from err
    if not isinstance(graph, TaskGraph):
        raise PlanFileError(f"{path}: graph.pkl does not hold a task graph")
    try:
        tasks = {t["id"]: _task_from_json(t) for t in doc["tasks"]}
        workers = tuple(_worker_from_json(w) for w in doc["workers"])
        summary = PlanSummary(doc["makespan_s"], doc["cost_usd"], doc["gb_s"], len(workers),
                              doc.get("cold_starts", 0), tuple(doc["critical_path"]))
        base = doc.get("baseline")
        baseline = PlanSummary(**{**base, "critical_path": tuple(base["critical_path"])}) \
            if base else None
        downgrades = tuple(Downgrade(**{**d, "tasks": tuple(d["tasks"])})
                           for d in doc.get("downgrades", ()))
        dynamic = {k: DynamicPlan(**d) for k, d in doc.get("dynamic", {}).items()}
    except (KeyError, TypeError) as err:
        raise PlanFileError(f"{path}: plan.json is missing or has a bad field ({err})") from err
    return Plan(graph, doc["strategy"], doc["platform"], tasks, workers, summary, baseline,
                doc.get("options", {}), tuple(doc.get("notes", ())), doc.get("created_at", 0.0),
                doc["schema_version"], downgrades, dict(doc.get("prediction_sources", {})),
                dict(doc.get("planning", {})), _platform_from_json(doc, path), dynamic,
                tuple(doc.get("requirements", ())))


def _platform_from_json(doc: Mapping[str, Any], path: str | Path) -> Platform | None:
    from simulator.errors import PlatformError
    from simulator.platform_file import platform_from_dict

    data = doc.get("platform_spec")
    if data is None:
        return None
    try:
        return platform_from_dict(data, f"{path}: platform_spec")
    except PlatformError as err:
        raise PlanFileError(str(err)) from err


def _open_zip(path: str | Path) -> zipfile.ZipFile:
    path = Path(path)
    if not path.exists():
        raise PlanFileError(f"no such plan file: {path}")
    try:
        data = path.read_bytes()
        zf = zipfile.ZipFile(io.BytesIO(data))
        bad = zf.testzip()
    except zipfile.BadZipFile as err:
        raise PlanFileError(f"{path} is not a plan file, or it is truncated ({err})") from None
    except (zlib.error, EOFError, OSError) as err:
        raise PlanFileError(f"{path} is corrupt ({err})") from None
    if bad is not None:
        raise PlanFileError(f"{path} is corrupt (member {bad} fails its checksum)")
    return zf


def _checked_json(zf: zipfile.ZipFile, path: str | Path) -> dict[str, Any]:
    try:
        doc = json.loads(zf.read("plan.json"))
    except KeyError:
        raise PlanFileError(f"{path} is a zip file but not a plan (no plan.json)") from None
    except ValueError as err:
        raise PlanFileError(f"{path}: plan.json is not valid JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != PLAN_FORMAT:
        raise PlanFileError(f"{path} is not a planflow plan")
    version = doc.get("schema_version")
    if version != PLAN_SCHEMA_VERSION:
        why = SCHEMA_CHANGES.get(version) if isinstance(version, int) else None
        raise PlanFileError(
            f"{path} is a plan of schema version {version}; this planflow reads version "
            f"{PLAN_SCHEMA_VERSION}{f' ({why})' if why else ''}. Compile the workflow again "
            "with this version."
        )
    return doc


def _task_json(t: TaskPlan) -> dict[str, Any]:
    """`asdict(t)` without its id, tuples as lists; spelled out: asdict's deep copy of every
    field is most of the time of writing a 100,000-task plan."""
    return {"memory_mb": t.memory_mb, "cpus": t.cpus, "worker": t.worker,
            "pred_start_s": t.pred_start_s, "pred_finish_s": t.pred_finish_s,
            "pred_duration_s": t.pred_duration_s, "critical": t.critical, "slack_s": t.slack_s,
            "optimizations": list(t.optimizations), "reasons": list(t.reasons),
            "prediction_source": t.prediction_source}


def _task_from_json(d: Mapping[str, Any]) -> TaskPlan:
    return TaskPlan(
        d["id"], d["memory_mb"], d["cpus"], d["worker"], d["pred_start_s"], d["pred_finish_s"],
        d["pred_duration_s"], d["critical"], d["slack_s"], tuple(d["optimizations"]),
        tuple(d["reasons"]), d.get("prediction_source", "prior"))


def _worker_json(w: WorkerPlan) -> dict[str, Any]:
    """`asdict(w)` with tuples as lists (spelled out, as `_task_json`)."""
    return {"worker_id": w.worker_id, "memory_mb": w.memory_mb, "cpus": w.cpus,
            "tasks": list(w.tasks), "prewarm_at_s": w.prewarm_at_s, "preload": w.preload,
            "pred_start_s": w.pred_start_s, "pred_stop_s": w.pred_stop_s, "cold": w.cold}


def _worker_from_json(d: Mapping[str, Any]) -> WorkerPlan:
    return WorkerPlan(**{**d, "tasks": tuple(d["tasks"])})


def _downgrade_json(d: Downgrade) -> dict[str, Any]:
    out = asdict(d)
    out["tasks"] = list(d.tasks)
    return out


def _summary_json(s: PlanSummary) -> dict[str, Any]:
    d = asdict(s)
    d["critical_path"] = list(s.critical_path)
    return d


def jsonable(value: Any) -> Any:
    """JSON-encodable values as they are (finite numbers), anything else as its repr."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return repr(value)
    return value
