"""Nested-structure arguments: references inside dicts of lists, tuples of dicts, and a
workflow that returns several outputs in a structure.

    planflow run examples/nested_args.py -p groups=3
"""

from planflow import task, workflow


@task
def measure(group: str, i: int) -> float:
    return float(len(group) * 10 + i)


@task
def summarize(report: dict[str, list[float]], weights: tuple[dict[str, float], ...]) -> dict:
    scale = sum(w["w"] for w in weights)
    return {g: round(sum(vals) * scale, 3) for g, vals in sorted(report.items())}


@task
def total(summary: dict[str, float]) -> float:
    return round(sum(summary.values()), 3)


@task
def weight(x: float) -> float:
    return x / 10.0


@workflow
def nested_args(groups: int = 3, per_group: int = 4):
    names = [f"group{g}" for g in range(groups)]
    report = {name: [measure(name, i) for i in range(per_group)] for name in names}
    weights = tuple({"w": weight(report[name][0]), "name": name} for name in names)
    summary = summarize(report, weights)
    return {"summary": summary, "total": total(summary), "first": [report[names[0]][0]]}
