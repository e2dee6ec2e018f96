"""Readable, reproducible task ids for a Dask graph, and the order its tasks are listed in.

Dask keys carry tokens (`('add-9f2c…', 1, 2)`, `'inc-6d1e…'`) that change from run to run, and
the dict of an optimised graph is ordered differently in every process (cull and fusion iterate
sets). planflow's task ids must be readable and the same for the same program
(`planner.trace`: `<function name>-<n>`), so neither tokens nor dict order may reach them.

**Labels.** A key's label is its name prefix without tokens (`dask.utils.key_split`, minus
Dask's internal `hlgfinalizecompute` word, unsafe characters made `_`, at most
`MAX_PREFIX_CHARS`) and its block index: `('add-9f2c…', 1, 2)` -> `("add", "1,2")`.

**Canonical order.** A depth-first walk from the output keys (in output order) lists each
task after its dependencies. A task's dependencies are visited in argument order, which is the
program's own order (`total([inc(0), inc(1)])`), except in tasks Dask fused into a subgraph,
whose external dependencies Dask sorts by hash: those are visited in label order (indices as
numbers), ties broken by *structure signature* (a hash of the labels of the task and all its
ancestors), which no token or hash seed changes. Only structurally identical siblings can
still swap, and swapping them relabels nothing.

**Ids.** Keys are grouped in *layers*: all keys of one tuple-key name (`add-9f2c…`), or all
string keys of one prefix. Layers get id prefixes in canonical order: the first layer of a
prefix keeps it (`add`), later ones count on (`add_2`, `add_3`, skipping any prefix already
taken). A tuple key's id is `<id prefix>-<index>` (`add-1,2`), a string key's
`<id prefix>-<n>` with n counting that layer's keys in canonical order (`inc-0`, `inc-1`).
Float indices (Dask's overlap blocks) are shortened to `FLOAT_DIGITS` significant digits, or
written exactly where two would shorten alike. An index never contains `-` (it is replaced by
`_`), so every id splits back into its layer and index at its last `-` and ids are unique.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Hashable, Iterable, Sequence

from dask.utils import key_split

Key = Hashable
"""A Dask key: a string, or a tuple of a name and an index."""

MAX_PREFIX_CHARS = 40
"""Longest name prefix kept in a task id; fused names (`a-b-c-…-sum`) keep their last words."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.]+")
_INTERNAL_WORDS = frozenset({"hlgfinalizecompute"})
"""Words of Dask's own key names that say nothing to a user."""

FLOAT_DIGITS = 6
"""Significant digits of a float block index in a task id."""

SIGNATURE_BYTES = 8
"""Size of a structure signature (64 bits: equal only for equal structure, in practice)."""

PREFIX_CACHE_SIZE = 1 << 16
"""Keys whose prefix is remembered (a 10,000-task graph asks for each prefix several times)."""


@functools.lru_cache(maxsize=PREFIX_CACHE_SIZE)
def prefix_of(key: Key) -> str:
    """The readable name prefix of a Dask key: `('sum-aggregate-ab12…', 0)` -> `sum-aggregate`."""
    words = [_UNSAFE.sub("_", w).strip("_") for w in str(key_split(key)).split("-")]
    words = [w for w in words if w and w not in _INTERNAL_WORDS]
    kept: list[str] = []
    for word in reversed(words):
        if kept and len(word) + 1 + sum(len(k) + 1 for k in kept) > MAX_PREFIX_CHARS:
            break
        kept.insert(0, word[:MAX_PREFIX_CHARS])
    return "-".join(kept) or "task"


def index_of(key: Key, exact: bool = False) -> str | None:
    """The block index of a tuple key as text (`"1,2"`), None for a key without one. Float
    indices (overlap ghost blocks: `0.9999999999999999`) are shortened unless `exact`."""
    if isinstance(key, tuple) and len(key) > 1:
        return ",".join(_UNSAFE.sub("_", _number(i, exact)).replace("-", "_") for i in key[1:])
    return None


def _number(i: object, exact: bool) -> str:
    return f"{i:.{FLOAT_DIGITS}g}" if isinstance(i, float) and not exact else str(i)


def _label(key: Key) -> str:
    index = index_of(key)
    return prefix_of(key) if index is None else f"{prefix_of(key)}\0{index}"


def canonical_order(outputs: Sequence[Key], children: Callable[[Key], Sequence[Key]],
                    hash_ordered: Callable[[Key], bool]) -> list[Key]:
    """Every key reachable from `outputs`, each after its dependencies (`children`), in the
    canonical order the module docstring defines. `hash_ordered(key)` says whether a key's
    children come in an order Dask chose by hash (fused subgraphs)."""
    post = _post_order(outputs, children)
    signature: dict[Key, bytes] = {}
    for key in post:
        h = hashlib.blake2b(_label(key).encode(), digest_size=SIGNATURE_BYTES)
        for sig in sorted(signature[c] for c in children(key)):
            h.update(sig)
        signature[key] = h.digest()

    def ordered(key: Key) -> Sequence[Key]:
        kids = children(key)
        if not hash_ordered(key):
            return kids
        return sorted(kids, key=lambda k: (_natural(k), signature[k]))

    return _post_order(outputs, ordered)


def _natural(key: Key) -> tuple[str, tuple[tuple[int, float, str], ...]]:
    """A sort key reading like the label, with block indices compared as numbers."""
    index = key[1:] if isinstance(key, tuple) else ()
    return prefix_of(key), tuple((0, float(i), "") if isinstance(i, int | float)
                                 else (1, 0.0, str(i)) for i in index)


def _post_order(outputs: Sequence[Key], children: Callable[[Key], Sequence[Key]]) -> list[Key]:
    """Iterative depth-first post-order (graphs of 100,000 tasks are deeper than the stack)."""
    done: set[Key] = set()
    out: list[Key] = []
    for root in outputs:
        if root in done:
            continue
        stack: list[tuple[Key, Iterable[Key]]] = [(root, iter(children(root)))]
        entered = {root}
        while stack:
            key, kids = stack[-1]
            for kid in kids:
                if kid not in done and kid not in entered:
                    entered.add(kid)
                    stack.append((kid, iter(children(kid))))
                    break
            else:
                stack.pop()
                done.add(key)
                out.append(key)
    return out


def task_ids(ordered: Sequence[Key]) -> dict[Key, str]:
    """Key -> task id for keys in canonical order (rules in the module docstring)."""
    layer_prefix: dict[Hashable, str] = {}
    taken: set[str] = set()
    counters: dict[Hashable, int] = {}
    ids: dict[Key, str] = {}
    used: set[str] = set()
    for key in ordered:
        index = index_of(key)
        prefix = prefix_of(key)
        layer: Hashable = ("name", key[0]) if index is not None and isinstance(key, tuple) \
            else ("prefix", prefix)
        if layer not in layer_prefix:
            layer_prefix[layer] = _free_prefix(prefix, taken)
        if index is None:
            index = str(counters.get(layer, 0))
            counters[layer] = int(index) + 1
        task_id = f"{layer_prefix[layer]}-{index}"
        if task_id in used:  # two float indices that shorten alike
            task_id = f"{layer_prefix[layer]}-{index_of(key, exact=True)}"
        used.add(task_id)
        ids[key] = task_id
    return ids


def _free_prefix(prefix: str, taken: set[str]) -> str:
    candidate, n = prefix, 1
    while candidate in taken:
        n += 1
        candidate = f"{prefix}_{n}"
    taken.add(candidate)
    return candidate
