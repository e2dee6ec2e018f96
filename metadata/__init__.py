"""Metric records, the metrics store and MetadataAccess (predictions for the planner).

This package imports no other planflow package. Modules, in dependency order:

- `errors`      MetadataError and its subclasses (RecordError, MetricsStoreError)
- `fingerprint` function_key: `module.qualname:<code hash>`, the identity of a history
- `records`     TaskRecord, WorkerRecord, RunRecord: frozen, schema-versioned JSON
- `keys`        every Redis key name of the metrics store (`<ns>:metrics:...`)
- `runplan`     RunPlan: the plan.json a run executed, kept compressed beside its records
- `store`       MetricsStore: write records, read exactly the functions asked for, prune, export
- `writer`      MetricsWriter: buffered writes with an upload strategy (runtime workers)
- `models`      the fitted duration / output-size / transfer models (scikit-learn, lazily)
- `priors`      TaskPrior, the hint formula, global priors, DurationPrediction
- `access`      MetadataAccess: the planner's only source of predictions
- `reports`     accuracy (leave-one-run-out), per-function summaries, CSV (`planflow metrics`)

Names are re-exported lazily, so `import metadata.records` stays cheap (no redis, no numpy).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metadata.access import MetadataAccess
    from metadata.errors import MetadataError, MetricsStoreError, RecordError
    from metadata.priors import SOURCES, DurationPrediction, TaskPrior
    from metadata.records import (
        RECORD_SCHEMA_VERSION,
        RunRecord,
        TaskRecord,
        WorkerRecord,
        function_key,
    )
    from metadata.reports import FunctionAccuracy, FunctionSummary, accuracy, summarize, write_csv
    from metadata.store import MetricsStore
    from metadata.writer import MetricsWriter, UploadStrategy

_EXPORTS = {
    "MetadataAccess": "access", "MetadataError": "errors", "MetricsStoreError": "errors",
    "RecordError": "errors", "SOURCES": "priors", "DurationPrediction": "priors",
    "TaskPrior": "priors", "RECORD_SCHEMA_VERSION": "records", "RunRecord": "records",
    "TaskRecord": "records", "WorkerRecord": "records", "function_key": "records",
    "FunctionAccuracy": "reports", "FunctionSummary": "reports", "accuracy": "reports",
    "summarize": "reports", "write_csv": "reports", "MetricsStore": "store",
    "MetricsWriter": "writer", "UploadStrategy": "writer",
}

__all__ = [
    "RECORD_SCHEMA_VERSION", "SOURCES", "DurationPrediction", "FunctionAccuracy",
    "FunctionSummary", "MetadataAccess", "MetadataError", "MetricsStore", "MetricsStoreError",
    "MetricsWriter", "RecordError", "RunRecord", "TaskPrior", "TaskRecord", "UploadStrategy",
    "WorkerRecord", "accuracy", "function_key", "summarize", "write_csv",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'metadata' has no attribute {name!r}")
    return getattr(importlib.import_module(f"metadata.{module}"), name)
