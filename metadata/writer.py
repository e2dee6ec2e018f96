"""MetricsWriter: the buffered writer a runtime worker records its metrics through.

A worker adds records as it goes; the **upload strategy** decides when they reach Redis:

| strategy   | flushes                                   | a SIGKILLed worker loses           |
|------------|-------------------------------------------|------------------------------------|
| `on-exit`  | only at `close()` (or explicit `flush()`) | everything it recorded             |
| `per-task` | synchronously inside every `add()`        | nothing that `add()` returned from |
| `periodic` | every `period_s` from a daemon thread     | at most the last `period_s`        |
| `batched`  | inside `add()` once `batch_size` queued   | fewer than `batch_size` records    |

`close()` (and leaving the `with` block) always flushes what is left, whatever the strategy.
The writer registers nothing global (no atexit hook, no signal handler): the worker loop owns
its life. It is thread-safe; flushes are serialised, and records of a failed flush stay queued
(in order) for the next one. The periodic thread logs a failed flush with its traceback and
retries on the next tick; `flush()`/`close()` raise `MetricsStoreError` instead.

A flush is one Redis pipeline, so `per-task` costs the caller one round trip per task; an asyncio
worker should call `add` through `asyncio.to_thread` or prefer `periodic`/`batched`.
"""

from __future__ import annotations

import enum
import logging
import threading

from metadata.errors import MetadataError
from metadata.keys import DEFAULT_NAMESPACE
from metadata.records import Record, RunRecord, TaskRecord, WorkerRecord
from metadata.store import MetricsStore

log = logging.getLogger(__name__)

DEFAULT_PERIOD_S = 5.0
"""Seconds between flushes under the `periodic` strategy."""

DEFAULT_BATCH_SIZE = 64
"""Queued records that trigger a flush under the `batched` strategy."""

THREAD_JOIN_TIMEOUT_S = 5.0
"""How long `close()` waits for the periodic thread to stop before flushing itself."""


class UploadStrategy(enum.StrEnum):
    """When a MetricsWriter sends its records to the store."""

    ON_EXIT = "on-exit"
    PER_TASK = "per-task"
    PERIODIC = "periodic"
    BATCHED = "batched"

    @classmethod
    def parse(cls, value: UploadStrategy | str) -> UploadStrategy:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise MetadataError(
                f"unknown upload strategy {value!r}; use one of: {choices}") from None


class MetricsWriter:
    """Buffers records and writes them to a MetricsStore according to an UploadStrategy."""

    def __init__(self, store: MetricsStore, strategy: UploadStrategy | str = UploadStrategy.ON_EXIT,
                 *, period_s: float = DEFAULT_PERIOD_S, batch_size: int = DEFAULT_BATCH_SIZE,
                 owns_store: bool = False) -> None:
        if period_s <= 0 or batch_size < 1:
            raise ValueError("period_s must be > 0 and batch_size >= 1")
        self.store = store
        self.strategy = UploadStrategy.parse(strategy)
        self.period_s = period_s
        self.batch_size = batch_size
        self.written = 0
        """Records written to the store so far."""
        self._owns_store = owns_store
        self._queue: list[Record] = []
        self._queue_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.strategy is UploadStrategy.PERIODIC:
            self._thread = threading.Thread(target=self._run_periodic, daemon=True,
                                            name="planflow-metrics-writer")
            self._thread.start()

    @classmethod
    def from_url(cls, url: str, namespace: str = DEFAULT_NAMESPACE,
                 strategy: UploadStrategy | str = UploadStrategy.ON_EXIT, *,
                 period_s: float = DEFAULT_PERIOD_S,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> MetricsWriter:
        """A writer with its own store connection, closed with the writer."""
        return cls(MetricsStore(url, namespace), strategy, period_s=period_s,
                   batch_size=batch_size, owns_store=True)

    @property
    def pending(self) -> int:
        """Records queued and not yet written."""
        with self._queue_lock:
            return len(self._queue)

    @property
    def closed(self) -> bool:
        return self._closed

    def add(self, record: Record) -> None:
        """Queue one record; under `per-task` it is in Redis when this returns."""
        if self._closed:
            raise MetadataError("MetricsWriter.add after close(): the record would be lost")
        if not isinstance(record, TaskRecord | WorkerRecord | RunRecord):
            raise TypeError(f"MetricsWriter.add takes a metric record, got {record!r}")
        with self._queue_lock:
            self._queue.append(record)
            queued = len(self._queue)
        if self.strategy is UploadStrategy.PER_TASK or (
                self.strategy is UploadStrategy.BATCHED and queued >= self.batch_size):
            self.flush()

    def flush(self) -> int:
        """Write everything queued now; returns how many records were written."""
        with self._flush_lock:
            with self._queue_lock:
                batch, self._queue = self._queue, []
            if not batch:
                return 0
            try:
                self.store.write(batch)
            except BaseException:
                with self._queue_lock:  # keep them, in order, for the next flush
                    self._queue[:0] = batch
                raise
            self.written += len(batch)
            return len(batch)

    def close(self) -> None:
        """Stop the periodic thread and flush what is left (always, whatever the strategy)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(THREAD_JOIN_TIMEOUT_S)
        try:
            self.flush()
        finally:
            if self._owns_store:
                self.store.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run_periodic(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.flush()
            except MetadataError:
                log.warning("periodic metrics flush to %s failed; records stay queued",
                            self.store.url, exc_info=True)
