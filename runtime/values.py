"""How a task's value travels to its consumers on other workers: through shared memory when they
share the host and it is large (`runtime.shm`), else through Redis; and back into a value.

`ValueCodec.encode` decides per value: workers on one host (`RunSettings.same_host`) put a value
of `shm.SHM_MIN_BYTES` or more in shared memory, if the run's bound lets them reserve its size,
and Redis carries a reference; anything else is pickled for Redis, refused first
(`ValueTooLarge`) when it exceeds what the server accepts per value. `decode` reads either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle

from runtime import shm
from runtime.codec import PICKLE_PROTOCOL, loads_value
from runtime.errors import ValueTooLarge


@dataclass(frozen=True, slots=True)
class Outbound:
    """A value ready to store: `payload` goes into the worker's output hash (the value's pickle,
    or a shared-memory reference); `nbytes` is the value's pickled size, buffers included."""

    payload: bytes
    nbytes: int
    shared: bool


class ValueCodec:
    """Encodes one worker's outputs and decodes its inputs."""

    def __init__(self, *, shm_dir: Path | None, reserve: Callable[[int], bool],
                 value_limit: int) -> None:
        self.shm_dir = shm_dir
        """The run's shared-memory directory; None when consumers may be on other hosts."""
        self._reserve = reserve
        self._value_limit = value_limit

    def encode(self, task_id: str, value: Any) -> Outbound:
        """The value as it will be stored (raises ValueTooLarge when neither path takes it)."""
        shared = _pickle_shared(value)
        if self.shm_dir is not None and shared.nbytes >= shm.SHM_MIN_BYTES \
                and self._reserve(shared.nbytes):
            return Outbound(shm.write(self.shm_dir, task_id, shared), shared.nbytes, True)
        payload = shared.data if not shared.buffers else _in_band(value)
        if len(payload) > self._value_limit:
            raise ValueTooLarge(task_id, len(payload), self._value_limit,
                                shared_memory=self.shm_dir is not None)
        return Outbound(payload, len(payload), False)

    @staticmethod
    def decode(raw: bytes) -> tuple[Any, int]:
        """(value, its size) of a stored payload: a shared-memory reference or a pickle."""
        if shm.is_ref(raw):
            return shm.read(raw), shm.ref_nbytes(raw)
        return loads_value(raw), len(raw)


def _pickle_shared(value: Any) -> shm.Shared:
    """Protocol-5 pickle with out-of-band buffers: the standard pickler, else cloudpickle
    (lambdas, classes of a workflow module pickled by value)."""
    try:
        return shm.pickle_shared(value)
    except Exception:
        buffers: list[Any] = []
        data = cloudpickle.dumps(value, protocol=PICKLE_PROTOCOL, buffer_callback=buffers.append)
        nbytes = len(data) + sum(memoryview(b).nbytes for b in buffers)
        return shm.Shared(data, buffers, nbytes)


def _in_band(value: Any) -> bytes:
    from runtime.codec import dumps_value

    return dumps_value(value)
