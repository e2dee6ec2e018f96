"""The metrics listener: turns worker events into metadata records and hands them to a
`MetricsWriter`, whose upload strategy (`on-exit`, `per-task`, `periodic`, `batched`) decides
when they reach Redis.

A task's record is complete when its batch has reached Redis (`TaskSettled` adds the upload,
update and invoke shares); a failed task's record is written at once. Metrics never fail a run:
a write error is logged and the records are dropped with the writer.
"""

from __future__ import annotations

import logging
import threading

from metadata.records import TaskRecord, WorkerRecord
from metadata.writer import MetricsWriter
from runtime.events import Event, TaskFinished, TaskSettled, WorkerFinished

log = logging.getLogger(__name__)


class MetricsRecorder:
    """A listener that writes TaskRecord/WorkerRecord through `writer` (closed by `close`)."""

    def __init__(self, writer: MetricsWriter) -> None:
        self._writer = writer
        self._lock = threading.Lock()
        self._pending: dict[str, TaskFinished] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, TaskFinished):
            if event.ok and event.settles:
                with self._lock:
                    self._pending[event.task_id] = event
            else:
                self._add(_task_record(event, 0.0, 0.0, 0.0))
        elif isinstance(event, TaskSettled):
            with self._lock:
                finished = self._pending.pop(event.task_id, None)
            if finished is not None:
                self._add(_task_record(finished, event.upload_s, event.update_s, event.invoke_s))
        elif isinstance(event, WorkerFinished):
            self._add(WorkerRecord(
                event.dag_id, event.worker_id, event.memory_mb, event.cpus, event.requested_at,
                event.started_at, event.cold, event.plan_download_s, event.plan_bytes,
                event.tasks_run, event.ended_at))

    def _add(self, record: TaskRecord | WorkerRecord) -> None:
        try:
            self._writer.add(record)
        except Exception as err:  # metrics must never fail a run
            log.warning("metrics: cannot record %s: %s", type(record).__name__, err)

    def close(self) -> None:
        """Record what never settled (the worker stopped early) and flush."""
        with self._lock:
            left, self._pending = list(self._pending.values()), {}
        for finished in left:
            self._add(_task_record(finished, 0.0, 0.0, 0.0))
        try:
            self._writer.close()
        except Exception as err:
            log.warning("metrics: final flush failed, records lost: %s", err)


def _task_record(e: TaskFinished, upload_s: float, update_s: float,
                 invoke_s: float) -> TaskRecord:
    return TaskRecord(
        run_id=e.dag_id, task_id=e.task_id, function_key=e.function_key,
        function_name=e.function_name, worker_id=e.worker_id, memory_mb=e.memory_mb,
        cpus=e.cpus, attempt=e.attempt, started_at=e.started_at, input_bytes=e.input_bytes,
        fetch_s=e.fetch_s, exec_s=e.exec_s, output_bytes=e.output_bytes, upload_s=upload_s,
        update_s=update_s, invoke_s=invoke_s, ok=e.ok, error=e.error, cpu_s=e.cpu_s,
        contention_s=e.contention_s)
