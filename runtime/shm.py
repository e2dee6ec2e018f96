"""The same-host data plane: large task values pass between workers of one machine through
shared memory, and Redis carries only a reference to them.

Through Redis a value is pickled, copied into the one single-threaded server and copied out
again by every consumer. Here the producer pickles it once (protocol 5: numpy arrays and other
buffers go *out of band*, written as they are) into a file of the run's directory in tmpfs
(`/dev/shm`), and the consumer maps the file and unpickles from the mapping: the buffers of its
numpy arrays are the mapping's pages, no copy (mapped copy-on-write, so a task that writes into
an input changes only its own copy, never the file another task reads).

**Which values.** A value whose pickle (buffers included) is at least `SHM_MIN_BYTES`, produced
on a launcher whose workers share the host (`RunSettings.same_host`); smaller ones are cheaper
through Redis. The reference stored in Redis in its place is `REF_MAGIC` + JSON
{path, nbytes}, so nothing else in the protocol changes: a consumer that fetches a reference
reads the file. The run's result travels the same way to the client.

**Lifetimes, owned by the run.** Files live in `<root>/planflow-<uid>/<namespace>/<dag id>/`,
a directory the client creates before any worker starts and that everything that ends the run
removes: the sink's worker after its completion, the client after collecting the result or on
abort, and the next command's reclaim of a run whose client was killed (`runtime.registry`),
which also sweeps directories no live run owns (`sweep`). Files are written under a temporary
name and renamed, so a reader never sees half a value.

**Bounded.** A run may hold at most `RunSettings.shm_max_bytes` in shared memory (by default a
fraction of what tmpfs has free when the run starts). Each write first reserves its size on the
run's `shm` counter (a guarded script: `runtime.scripts`); past the bound the value goes through
Redis instead (spill), or, larger than Redis takes too, fails its task naming both limits.

File layout: `REF_MAGIC`-free; a header line `PFV1 <pickle bytes> <buffer bytes>...\\n`, the
pickle, then each buffer at an `ALIGN`-byte offset.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import pickle
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHM_ROOT_ENV = "PLANFLOW_SHM_DIR"
"""Environment variable naming the tmpfs directory of shared values (default /dev/shm)."""

SHM_MIN_BYTES = 256 * 1024
"""Values smaller than this (pickled, buffers included) go through Redis."""

SHM_FRACTION_OF_FREE = 0.5
"""Default bound of one run's shared values: this fraction of tmpfs's free space at its start."""

ALIGN = 64
"""Buffers start at multiples of this offset (a cache line: numpy's own alignment)."""

REF_MAGIC = b"\x00planflow-shm\x00"
"""Prefix of the reference stored in Redis in place of a value that lives in shared memory."""

SWEEP_AGE_S = 300.0
"""A run directory no live run owns is swept once it is this old (a run being set up is not)."""

PICKLE_PROTOCOL = 5


@dataclass(frozen=True)
class Shared:
    """A value pickled for shared memory: the pickle and its out-of-band buffers."""

    data: bytes
    buffers: list[pickle.PickleBuffer]
    nbytes: int


def root() -> Path:
    """This user's directory of shared values."""
    base = Path(os.environ.get(SHM_ROOT_ENV) or "/dev/shm")
    if not base.is_dir():
        base = Path(tempfile.gettempdir())
    return base / f"planflow-{os.getuid()}"


def run_dir(namespace: str, dag_id: str) -> Path:
    """The directory of one run's shared values (namespace and dag id are key-safe names)."""
    return root() / namespace / dag_id


def create_run_dir(namespace: str, dag_id: str) -> Path:
    path = run_dir(namespace, dag_id)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def default_max_bytes() -> int:
    """The default bound of a run's shared values (a fraction of tmpfs's free space)."""
    base = root().parent
    try:
        stats = os.statvfs(base)
    except OSError:
        return 0
    return int(stats.f_bavail * stats.f_frsize * SHM_FRACTION_OF_FREE)


def pickle_shared(value: Any) -> Shared:
    """Pickle `value` with its buffers out of band (numpy arrays are not copied here)."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(value, protocol=PICKLE_PROTOCOL, buffer_callback=buffers.append)
    nbytes = len(data) + sum(memoryview(b).nbytes for b in buffers)
    return Shared(data, buffers, nbytes)


def write(directory: Path, task_id: str, shared: Shared) -> bytes:
    """Write `shared` as the file of `task_id` (atomically) and return its reference."""
    path = directory / f"{_safe(task_id)}.v"
    sizes = [memoryview(b).nbytes for b in shared.buffers]
    header = f"PFV1 {len(shared.data)} {' '.join(map(str, sizes))}\n".encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(header)
        f.write(shared.data)
        offset = len(header) + len(shared.data)
        for buf, size in zip(shared.buffers, sizes, strict=True):
            pad = -offset % ALIGN
            f.write(b"\0" * pad)
            f.write(memoryview(buf).cast("B"))
            offset += pad + size
    os.replace(tmp, path)
    return REF_MAGIC + json.dumps({"path": str(path), "nbytes": shared.nbytes}).encode()


def is_ref(raw: bytes) -> bool:
    return raw.startswith(REF_MAGIC)


def ref_nbytes(raw: bytes) -> int:
    """The size of the value a reference stands for."""
    return int(json.loads(raw[len(REF_MAGIC):])["nbytes"])


def read(raw: bytes) -> Any:
    """The value a reference stands for, unpickled from a copy-on-write mapping of its file
    (its buffers are views of the mapping: no copy)."""
    path = Path(json.loads(raw[len(REF_MAGIC):])["path"])
    try:
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    except FileNotFoundError:
        raise FileNotFoundError(f"shared value {path} is gone (its run ended, or was "
                                "cleaned up)") from None
    view = memoryview(mapped)
    end = mapped.find(b"\n")
    fields = bytes(view[:end]).split()
    if not fields or fields[0] != b"PFV1":
        raise ValueError(f"{path} is not a planflow shared value")
    size, sizes = int(fields[1]), [int(x) for x in fields[2:]]
    offset = end + 1
    data = view[offset:offset + size]
    offset += size
    buffers = []
    for n in sizes:
        offset += -offset % ALIGN
        buffers.append(view[offset:offset + n])
        offset += n
    return pickle.loads(data, buffers=buffers)


def remove_run(namespace: str, dag_id: str) -> None:
    """Delete a run's shared values (idempotent; open mappings stay valid until closed)."""
    shutil.rmtree(run_dir(namespace, dag_id), ignore_errors=True)


def sweep(namespace: str, live: set[str], now: float | None = None) -> list[str]:
    """Remove the run directories of `namespace` that no live run owns and that are older than
    SWEEP_AGE_S; returns the dag ids removed."""
    base = root() / namespace
    now = time.time() if now is None else now
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in base.iterdir():
            if entry.name in live or not entry.is_dir():
                continue
            with contextlib.suppress(FileNotFoundError):
                if now - entry.stat().st_mtime > SWEEP_AGE_S:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry.name)
    return removed


def _safe(task_id: str) -> str:
    """A file name for a task id (ids of traces may hold `/` or `:`)."""
    return "".join(c if c.isalnum() or c in "-_." else f"%{ord(c):02x}" for c in task_id)
