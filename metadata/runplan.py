"""The plan a run executed, as the metrics store keeps it: its readable `plan.json`, compressed.

The client writes it once as a run starts (`MetricsStore.write_plan`), so whoever watches the
run (the dashboard) can draw its task graph while it goes and compare the planned timeline with
the observed one afterwards, long after the run's own keys are gone. `metadata` knows nothing
of the planner: the document is a plain JSON object here, checked only for the keys this module
reads (`workflow`, `strategy`, `tasks`); the figures of `SUMMARY_KEYS` are copied into a small
separate field, so a list of many runs never decompresses their plans.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from metadata.errors import RecordError

SUMMARY_KEYS: tuple[str, ...] = (
    "workflow", "strategy", "platform", "makespan_s", "cost_usd", "gb_s", "cold_starts")
"""Figures of the plan kept beside the compressed document (plus `tasks` and `workers`,
stored as counts)."""

COMPRESS_LEVEL = 3
"""zlib level of the stored document: a 10,000-task plan.json of ~5 MB packs to a few hundred
KB in tens of milliseconds; higher levels gain little and cost the run's start."""


@dataclass(frozen=True)
class RunPlan:
    """A run's plan document and when the client recorded it (unix seconds)."""

    run_id: str
    recorded_at: float
    doc: dict[str, Any]


def summary_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The small figures of a plan document (`SUMMARY_KEYS`, task and worker counts)."""
    _check(doc, "plan document")
    out = {k: doc[k] for k in SUMMARY_KEYS if k in doc}
    out["tasks"] = len(doc["tasks"])
    out["workers"] = len(doc.get("workers", ()))
    return out


def encode_doc(doc: dict[str, Any]) -> bytes:
    _check(doc, "plan document")
    return zlib.compress(json.dumps(doc, separators=(",", ":"), allow_nan=False).encode(),
                         COMPRESS_LEVEL)


def decode_doc(blob: bytes, run_id: str) -> dict[str, Any]:
    try:
        doc = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError) as err:
        raise RecordError(f"the recorded plan of run {run_id} is corrupt ({err}); the run's "
                          "other records are intact, its plan is lost") from err
    _check(doc, f"the recorded plan of run {run_id}")
    return doc


def _check(doc: Any, what: str) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), list) \
            or not isinstance(doc.get("workflow"), str):
        raise RecordError(f"{what} is not a plan.json object (it needs 'workflow' and a "
                          "'tasks' list)")
