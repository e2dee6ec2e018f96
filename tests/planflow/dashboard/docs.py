"""Plan documents (plan.json shape) built by hand for the dashboard's pure tests."""

from __future__ import annotations

from typing import Any


def tree_doc(leaves: int = 8, workers: int | None = None) -> dict[str, Any]:
    """A binary in-tree of `add` tasks over `leaves` constants (leaves - 1 tasks), the
    tree_reduction example's shape, for n = 8::

        add-0  add-1  add-2  add-3        generation 0
           \\   /       \\   /
           add-4        add-5             generation 1
               \\        /
                 add-6                    generation 2 (sink; critical: add-3, add-5, add-6)

    Task i runs on worker w(i % workers) (default: one worker per first-level pair).
    """
    tasks: list[dict[str, Any]] = []
    level = [None] * leaves
    n = 0
    while len(level) > 1:
        nxt = []
        for a, b in zip(level[0::2], level[1::2], strict=False):
            tid = f"add-{n}"
            n += 1
            tasks.append({"id": tid, "function": "add", "function_key": "tree.add:1",
                          "upstream": [u for u in (a, b) if u is not None]})
            nxt.append(tid)
        level = nxt
    count = workers or max(1, leaves // 2)
    path = _rightmost_path(tasks)
    for i, t in enumerate(tasks):
        t.update({"worker": f"w{i % count}", "memory_mb": 1769, "cpus": 1.0,
                  "pred_start_s": 0.1 * i, "pred_finish_s": 0.1 * i + 0.1,
                  "pred_duration_s": 0.1, "critical": t["id"] in path, "slack_s": 0.0,
                  "optimizations": [], "reasons": [], "prediction_source": "prior"})
    order: dict[str, list[str]] = {}
    for t in tasks:
        order.setdefault(t["worker"], []).append(t["id"])
    return {"workflow": "tree_reduction", "strategy": "critical-path", "platform": "local",
            "makespan_s": 1.0, "cost_usd": 0.001, "gb_s": 1.5, "cold_starts": count,
            "critical_path": path,
            "workers": [{"worker_id": w, "memory_mb": 1769, "cpus": 1.0, "tasks": ts}
                        for w, ts in order.items()],
            "tasks": tasks}


def _rightmost_path(tasks: list[dict[str, Any]]) -> list[str]:
    path = [tasks[-1]["id"]]
    by_id = {t["id"]: t for t in tasks}
    while by_id[path[0]]["upstream"]:
        path.insert(0, by_id[path[0]]["upstream"][-1])
    return path
