"""Function keys: `module.qualname:<hash of code>`, the identity under which metrics accumulate.

A changed function body must start a new history, while the same function loaded from another
directory, pickled by value with cloudpickle, or specialised by CPython's adaptive interpreter
must keep its history. So the hash covers what defines behaviour and nothing about location:

- included: bytecode (`co_code`, which CPython >= 3.11 returns de-specialised), constants
  (recursively, nested code objects of lambdas, comprehensions and inner functions included),
  names, local variable names, argument counts, flags and the exception table;
- excluded: file name, first line number, line and column tables.

The module part drops the per-path suffix that `planner.loader` adds to user modules
(`planflow_user_<stem>_<10 hex>` -> `<stem>`), so moving `wf.py` to another directory keeps its
keys. Default argument values and closure cell contents are not part of the key.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from types import CodeType
from typing import Any

HASH_HEX_CHARS = 12
"""Length of the code hash in a function key (48 bits: collisions are not a practical concern)."""

_USER_MODULE = re.compile(r"^planflow_user_(?P<stem>.+)_[0-9a-f]{10}$")
"""Private module names given by `planner.loader.load_module` to workflow files."""

_CODE_ATTRS = ("co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_flags",
               "co_nlocals", "co_name", "co_names", "co_varnames", "co_freevars", "co_cellvars")
"""Code object attributes hashed as text, besides bytecode, constants and exception table."""


def function_key(fn: Callable[..., Any]) -> str:
    """The metrics identity of `fn`: `module.qualname:<hash of its code>`.

    Works for plain functions, lambdas, bound methods, `functools.partial` objects and callable
    instances; a callable without Python code (a builtin) hashes its qualified name only.
    """
    target = _underlying(fn)
    module = _stable_module(getattr(target, "__module__", None) or "?")
    qualname = str(getattr(target, "__qualname__", None) or getattr(target, "__name__", "?"))
    code = getattr(target, "__code__", None)
    digest = _code_digest(code) if isinstance(code, CodeType) else _text_digest(qualname)
    return f"{module}.{qualname}:{digest}"


def _underlying(fn: Any) -> Any:
    """The plain function behind bound methods, partials and callable instances."""
    for _ in range(8):  # bounded: a partial of a bound method of a partial is still found
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif hasattr(fn, "__func__"):
            fn = fn.__func__
        elif hasattr(fn, "__code__") or isinstance(fn, type):
            break
        else:
            method = next((vars(k)["__call__"] for k in type(fn).__mro__ if "__call__" in vars(k)),
                          None)
            if not hasattr(method, "__code__"):
                break
            fn = method
    return fn


def _stable_module(module: str) -> str:
    match = _USER_MODULE.match(module)
    return match.group("stem") if match else module


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_HEX_CHARS]


@functools.lru_cache(maxsize=4096)
def _code_digest(code: CodeType) -> str:
    # Code objects compare equal only when they match in everything including line numbers, so
    # caching on them never returns another function's digest.
    h = hashlib.sha256()
    _feed_code(h, code)
    return h.hexdigest()[:HASH_HEX_CHARS]


def _feed_code(h: Any, code: CodeType) -> None:
    h.update(b"code\0")
    h.update(code.co_code)
    h.update(getattr(code, "co_exceptiontable", b""))
    for attr in _CODE_ATTRS:
        h.update(f"\0{attr}={getattr(code, attr)!r}".encode())
    h.update(b"\0consts(")
    for const in code.co_consts:
        _feed_const(h, const)
    h.update(b")")


def _feed_const(h: Any, const: object) -> None:
    if isinstance(const, CodeType):
        _feed_code(h, const)
    elif isinstance(const, tuple):
        h.update(b"tuple(")
        for item in const:
            _feed_const(h, item)
        h.update(b")")
    elif isinstance(const, frozenset):
        # Iteration order of a frozenset of strings changes with hash randomisation: sort reprs.
        h.update(b"frozenset(" + ",".join(sorted(repr(c) for c in const)).encode() + b")")
    else:
        h.update(f"{type(const).__name__}:{const!r};".encode())
