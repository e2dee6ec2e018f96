"""Records: a stable JSON form that round-trips, and clear errors for other versions."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metadata.errors import MetadataError, RecordError
from metadata.records import (
    RECORD_SCHEMA_VERSION,
    RunRecord,
    TaskRecord,
    WorkerRecord,
    decode_record,
)
from tests.metadata.factories import run, task, worker


@pytest.mark.parametrize("record", [task(), task(peak_memory_mb=312.5, error="boom", ok=False),
                                    worker(), run(), run(observed_cost_usd=0.0031)])
def test_round_trip_through_json_and_dict(record: TaskRecord | WorkerRecord | RunRecord) -> None:
    text = record.to_json()
    assert type(record).from_json(text) == record
    assert decode_record(text) == record
    assert decode_record(record.to_dict()) == record


def test_json_is_stable_and_carries_version_and_kind() -> None:
    data = json.loads(task().to_json())
    assert data["v"] == RECORD_SCHEMA_VERSION
    assert data["kind"] == "task"
    assert list(data) == sorted(data)  # sorted keys: byte-stable output
    assert task().to_json() == task().to_json()


def test_other_schema_version_is_rejected_with_a_clear_error() -> None:
    data = task().to_dict()
    data["v"] = RECORD_SCHEMA_VERSION + 1
    with pytest.raises(MetadataError, match=r"schema version 2; this planflow reads version 1"):
        TaskRecord.from_dict(data)
    with pytest.raises(RecordError, match="schema version"):
        decode_record(json.dumps(data))


def test_missing_or_mistyped_fields_are_named() -> None:
    data = task().to_dict()
    del data["exec_s"]
    with pytest.raises(RecordError, match="lacks field 'exec_s'"):
        TaskRecord.from_dict(data)
    data = task().to_dict() | {"ok": "yes"}
    with pytest.raises(RecordError, match="field 'ok' should be bool"):
        TaskRecord.from_dict(data)


def test_wrong_kind_and_garbage_are_errors() -> None:
    with pytest.raises(RecordError, match="expected a worker record"):
        WorkerRecord.from_dict(task().to_dict())
    with pytest.raises(RecordError, match="not JSON"):
        decode_record("{nope")
    with pytest.raises(RecordError, match="unknown kind"):
        decode_record({"v": RECORD_SCHEMA_VERSION, "kind": "banana"})


def test_optional_fields_may_be_absent_and_ints_read_as_floats() -> None:
    data = task().to_dict()
    del data["peak_memory_mb"], data["error"]
    data["exec_s"] = 2
    rec = TaskRecord.from_dict(data)
    assert rec.peak_memory_mb is None and rec.error is None
    assert rec.exec_s == 2.0 and isinstance(rec.exec_s, float)


@given(exec_s=st.floats(0, 1e6), input_bytes=st.integers(0, 2**53), error=st.none() | st.text())
def test_any_task_record_round_trips(exec_s: float, input_bytes: int, error: str | None) -> None:
    rec = task(exec_s=exec_s, input_bytes=input_bytes, error=error)
    assert TaskRecord.from_json(rec.to_json()) == rec


def test_worker_startup_is_request_to_start() -> None:
    assert worker(requested_at=10.0, started_at=10.25).startup_s == pytest.approx(0.25)


def test_isolated_time_takes_out_host_contention_but_not_the_quota() -> None:
    # half the wall time waiting for a core another process held: that half is not the task's
    crowded = task(exec_s=1.0, cpu_s=0.5, contention_s=0.5, cpus=1.0)
    assert crowded.isolated_s == 0.5
    # a 0.5-CPU task cannot run faster than its quota allows, whatever the contention says
    quota = task(exec_s=1.0, cpu_s=0.4, contention_s=0.9, cpus=0.5)
    assert quota.isolated_s == 0.8
    # not measured (older records, other systems): the wall time as it is
    assert task(exec_s=1.0).isolated_s == 1.0
    old = task(exec_s=1.0, cpu_s=0.5, contention_s=0.5).to_dict()
    del old["cpu_s"], old["contention_s"]
    assert TaskRecord.from_dict(old).isolated_s == 1.0
