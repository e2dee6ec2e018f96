"""An I/O-bound fan-out: `width` tasks that each wait `delay_s` seconds (as a task waiting on a
web service or a disk would) and return a small record, then a gather.

The tasks hold no CPU while they wait, so on a shared machine more of them can run at once than
it has cores.

    planflow run examples/io_fanout.py -p width=16 -p delay_s=0.25
"""

import time

from planflow import task, workflow


@task
def fetch(i: int, delay_s: float) -> dict[str, int]:
    time.sleep(delay_s)
    return {"item": i, "value": i * i}


@task
def gather(records: list[dict[str, int]]) -> dict[str, int]:
    return {"items": len(records), "total": sum(r["value"] for r in records)}


@workflow
def io_fanout(width: int = 16, delay_s: float = 0.25):
    return gather([fetch(i, delay_s) for i in range(width)])
