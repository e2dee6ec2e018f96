"""Bytes on the wire: task values (pickle, cloudpickle when needed) and compressed plan blobs.

Values use the standard pickler first (fast, no per-call set-up) and fall back to cloudpickle
for what it cannot handle: lambdas, and classes or functions of a workflow module that exists
only by value in this process. A value that neither can serialize is an error naming the task.
"""

from __future__ import annotations

import pickle
import zlib
from typing import Any

import cloudpickle

PICKLE_PROTOCOL = 5
"""Pickle protocol of task values (out-of-band buffers are not used: values go to Redis whole)."""

BLOB_COMPRESSION_LEVEL = 1
"""zlib level of plan blobs: level 1 gets most of the size win at a fraction of level 6's time."""


def dumps_value(value: Any) -> bytes:
    """Serialize one task value."""
    try:
        return pickle.dumps(value, protocol=PICKLE_PROTOCOL)
    except Exception:
        return cloudpickle.dumps(value, protocol=PICKLE_PROTOCOL)


def loads_value(data: bytes) -> Any:
    """Deserialize one task value (cloudpickle output loads with the standard unpickler)."""
    return pickle.loads(data)


def dumps_blob(obj: Any, *, plain: bool = False) -> bytes:
    """A compressed pickle of a plan part: cloudpickle (code by value where registered), or the
    standard pickler when the caller knows `obj` holds only plain data (`is_plain`) and
    importable types - several times faster on large plans."""
    data = pickle.dumps(obj, protocol=PICKLE_PROTOCOL) if plain \
        else cloudpickle.dumps(obj, protocol=PICKLE_PROTOCOL)
    return zlib.compress(data, BLOB_COMPRESSION_LEVEL)


def loads_blob(data: bytes) -> Any:
    return pickle.loads(zlib.decompress(data))


def is_plain(value: Any, atoms: tuple[type, ...] = ()) -> bool:
    """True for None, bools, numbers, strings, bytes, instances of `atoms` (exact types), and
    lists, tuples and dicts (string keys) of those: what the standard pickler ships safely."""
    kind = type(value)
    if kind in _ATOMS or kind in atoms:
        return True
    if kind is list or kind is tuple:
        return all(is_plain(v, atoms) for v in value)
    if kind is dict:
        return all(type(k) is str and is_plain(v, atoms) for k, v in value.items())
    return False


_ATOMS = frozenset({type(None), bool, int, float, complex, str, bytes})


def estimate_size(value: Any) -> int:
    """Bytes of a value that is not serialized (kept local): its buffer size for bytes, strings
    and numpy arrays (what pickling them costs, within a header), else its pickled size, so that
    the metrics record one measure of size whether a value was uploaded or not."""
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(value, bytes | bytearray | str):
        return len(value)
    try:
        return len(dumps_value(value))
    except Exception:  # unpicklable values stay local; their size is unknown
        return 0
