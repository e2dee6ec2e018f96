"""Metric records: what one task, one worker and one run measured. Frozen, schema-versioned.

The runtime writes these; the metrics store keeps them as one compact JSON object each; the
predictor and `planflow metrics` read them back. The JSON form is stable: keys are the field
names, plus `"v"` (the record schema version) and `"kind"` (`task` | `worker` | `run`).
Times are unix seconds (`*_at`) or durations in seconds (`*_s`); sizes are bytes.

Decoding checks the version first: a record of another version is a `RecordError` that says
which version it has and which this planflow reads, never a half-decoded record. Within a
version, missing fields and values of the wrong type are errors too; numbers written as ints
are accepted where floats are expected.

`function_key` (re-exported from `metadata.fingerprint`) is the identity under which a task's
records accumulate: a changed function body starts a new history.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from metadata.errors import RecordError
from metadata.fingerprint import function_key

__all__ = [
    "RECORD_SCHEMA_VERSION", "Record", "RunRecord", "TaskRecord", "WorkerRecord",
    "decode_record", "function_key",
]

RECORD_SCHEMA_VERSION = 1
"""Version of the JSON form of every record; bump it when a field changes meaning or goes away."""

R = TypeVar("R", bound="_RecordBase")


class _RecordBase:
    """to_dict/from_dict/to_json/from_json shared by the record dataclasses."""

    KIND: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """Keys in sorted order (the JSON form's); every field is a scalar, so this is a
        shallow dict, not `dataclasses.asdict` (10x slower; a worker writes one per task)."""
        header = {"v": RECORD_SCHEMA_VERSION, "kind": self.KIND}
        return {name: header[name] if name in header else getattr(self, name)
                for name in _sorted_keys(type(self))}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))  # to_dict's keys are sorted

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        _check_header(data, cls.KIND)
        values: dict[str, Any] = {}
        for name, (typ, optional) in _field_types(cls).items():
            if name not in data:
                if optional:
                    continue
                raise RecordError(f"{cls.KIND} record lacks field '{name}': {_short(data)}")
            values[name] = _coerce(cls.KIND, name, data[name], typ, optional)
        return cls(**values)

    @classmethod
    def from_json(cls: type[R], text: str | bytes) -> R:
        return cls.from_dict(_parse_json(text))


@dataclass(frozen=True)
class TaskRecord(_RecordBase):
    """One attempt of one task on one worker.

    `exec_s` is the function's own run time; `fetch_s`/`upload_s` move inputs/outputs through the
    store, `update_s` updates downstream dependency state, `invoke_s` starts other workers.
    `cpu_s` and `contention_s` (optional: older records lack them) say how much of `exec_s` was
    lost to other processes on the same host (`runtime.cpuclock`).
    """

    KIND: ClassVar[str] = "task"
    run_id: str
    task_id: str
    function_key: str
    function_name: str
    worker_id: str
    memory_mb: int
    cpus: float
    attempt: int
    started_at: float
    input_bytes: int
    fetch_s: float
    exec_s: float
    output_bytes: int
    upload_s: float
    update_s: float
    invoke_s: float
    ok: bool
    peak_memory_mb: float | None = None
    error: str | None = None
    cpu_s: float | None = None
    """CPU time of the worker process during the attempt (None: not measured)."""
    contention_s: float | None = None
    """Part of `exec_s` the task waited for a core held by another process (host contention,
    not its own CPU quota); None: not measured."""

    @property
    def isolated_s(self) -> float:
        """`exec_s` as it would have been with the host to itself: less the contention, but
        never below what the CPU time needs at this configuration's CPU share."""
        if not self.contention_s:
            return self.exec_s
        floor = self.cpu_s / self.cpus if self.cpu_s is not None and self.cpus > 0 else 0.0
        return max(self.exec_s - self.contention_s, floor)

    @property
    def usable(self) -> bool:
        """Whether this record can train the predictor: a success with sane measurements."""
        return (self.ok and self.cpus > 0 and self.input_bytes >= 0 and self.output_bytes >= 0
                and math.isfinite(self.exec_s) and self.exec_s >= 0)


@dataclass(frozen=True)
class WorkerRecord(_RecordBase):
    """One worker's life: start-up (cold or warm), plan download ("DAG download time"), end."""

    KIND: ClassVar[str] = "worker"
    run_id: str
    worker_id: str
    memory_mb: int
    cpus: float
    requested_at: float
    started_at: float
    cold: bool
    plan_download_s: float
    plan_bytes: int
    tasks_run: int
    ended_at: float

    @property
    def startup_s(self) -> float:
        """Seconds from the start request to the worker running."""
        return max(0.0, self.started_at - self.requested_at)


@dataclass(frozen=True)
class RunRecord(_RecordBase):
    """One run of a plan: what the planner predicted beside what happened."""

    KIND: ClassVar[str] = "run"
    run_id: str
    workflow: str
    strategy: str
    submitted_at: float
    finished_at: float
    predicted_makespan_s: float
    observed_makespan_s: float
    predicted_cost_usd: float
    ok: bool
    observed_cost_usd: float | None = None


Record = TaskRecord | WorkerRecord | RunRecord
_BY_KIND: dict[str, type[TaskRecord] | type[WorkerRecord] | type[RunRecord]] = {
    "task": TaskRecord, "worker": WorkerRecord, "run": RunRecord}


def decode_record(data: str | bytes | dict[str, Any]) -> Record:
    """Any record from its JSON text or dict, by its `kind`."""
    obj = data if isinstance(data, dict) else _parse_json(data)
    kind = obj.get("kind")
    cls = _BY_KIND.get(kind) if isinstance(kind, str) else None
    if cls is None:
        _check_header(obj, None)
        raise RecordError(f"record of unknown kind {kind!r}; expected one of {sorted(_BY_KIND)}")
    return cls.from_dict(obj)


# -- decoding helpers ------------------------------------------------------------------------

def _parse_json(text: str | bytes) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except ValueError as err:
        raise RecordError(f"metric record is not JSON ({err}): {_short(text)}") from err
    if not isinstance(obj, dict):
        raise RecordError(f"metric record is not a JSON object: {_short(text)}")
    return obj


def _check_header(data: dict[str, Any], kind: str | None) -> None:
    version = data.get("v")
    if version != RECORD_SCHEMA_VERSION:
        raise RecordError(
            f"metric record has schema version {version!r}; this planflow reads version "
            f"{RECORD_SCHEMA_VERSION}. Record it again with this version, or prune the old "
            f"metrics (`planflow metrics prune`)")
    if kind is not None and data.get("kind") != kind:
        raise RecordError(f"expected a {kind} record, got kind {data.get('kind')!r}")


_FIELD_TYPES: dict[type, dict[str, tuple[type, bool]]] = {}
"""Per record class: field name -> (base type, optional), computed once."""


_SORTED_KEYS: dict[type, tuple[str, ...]] = {}
"""Per record class: the keys of its JSON form, sorted, computed once."""


def _sorted_keys(cls: type[_RecordBase]) -> tuple[str, ...]:
    """The keys of `cls`'s JSON form, sorted: its fields, `v` and `kind`."""
    keys = _SORTED_KEYS.get(cls)
    if keys is None:
        keys = _SORTED_KEYS[cls] = tuple(sorted([*_field_types(cls), "v", "kind"]))
    return keys


def _field_types(cls: type[_RecordBase]) -> dict[str, tuple[type, bool]]:
    cached = _FIELD_TYPES.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    types: dict[str, tuple[type, bool]] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        args = typing.get_args(hints[f.name])
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), hints[f.name])
        types[f.name] = (base, optional)
    _FIELD_TYPES[cls] = types
    return types


def _coerce(kind: str, name: str, value: Any, typ: type, optional: bool) -> Any:
    if type(value) is typ or (value is None and optional):
        return value
    if typ is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if typ is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if typ in (bool, str) and type(value) is typ:
        return value
    raise RecordError(f"{kind} record field '{name}' should be {typ.__name__}"
                      f"{' or null' if optional else ''}, got {value!r}")


def _short(value: object, limit: int = 200) -> str:
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return text if len(text) <= limit else text[:limit] + "..."
