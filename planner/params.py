"""Workflow parameters: from `-p name=value` strings to the types the signature annotates.

Supported annotations: int, float, str, bool, and Optional of those (`int | None`). A parameter
without annotation takes the type of its default, else stays a string. `none`/`null` gives None
for an Optional parameter.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping
from typing import Any

from planner.errors import ParameterError

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}
_NONE = {"none", "null"}
_SCALARS: tuple[type, ...] = (bool, int, float, str)


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """`["n=64", "name=x"]` -> `{"n": "64", "name": "x"}`; a missing `=` is an error."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"parameter {item!r} is not of the form name=value")
        out[name.strip()] = value
    return out


def convert_params(workflow: str, fn: Any, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check names against `fn`'s signature and convert string values by annotation."""
    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotation: fall back to the raw ones
        hints = {}
    params = {p.name: p for p in signature.parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in params:
            known = ", ".join(params) or "none"
            raise ParameterError(
                f"workflow '{workflow}' has no parameter '{name}' (its parameters: {known})"
            )
        param = params[name]
        annotation = hints.get(name, param.annotation)
        out[name] = _convert(workflow, param, annotation, value) if isinstance(value, str) \
            else value
    missing = [p for p in params.values() if p.default is p.empty and p.name not in out]
    if missing:
        raise ParameterError(
            f"workflow '{workflow}' needs parameter(s) {', '.join(p.name for p in missing)}; "
            f"pass -p {missing[0].name}=VALUE"
        )
    return out


def _convert(workflow: str, param: inspect.Parameter, annotation: Any, value: str) -> Any:
    target, optional = _target_type(param, annotation)
    if optional and value.strip().lower() in _NONE:
        return None
    try:
        if target is bool:
            lowered = value.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError("expected true/false")
        return target(value.strip()) if target is not str else value
    except ValueError:
        raise ParameterError(
            f"workflow '{workflow}': parameter '{param.name}' expects {target.__name__}, "
            f"got {value!r}"
        ) from None


def _target_type(param: inspect.Parameter, annotation: Any) -> tuple[type, bool]:
    if annotation is inspect.Parameter.empty or annotation is None:
        default = param.default
        if default is not param.empty and default is not None and type(default) in _SCALARS:
            return type(default), default is None
        return str, True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) == 1 and args[0] in _SCALARS:
            return args[0], optional
    elif annotation in _SCALARS:
        return annotation, False
    raise ParameterError(
        f"parameter '{param.name}' has annotation {annotation!r}; workflow parameters may be "
        "int, float, str, bool or Optional of those"
    )
