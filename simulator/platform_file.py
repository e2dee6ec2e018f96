"""Platform TOML files: the format, built-ins, `extends`, and errors that name the field.

A platform file holds the fields of `simulator.platform.Platform` at top level:

    name = "my-lambda"                  # defaults to the file name without .toml
    extends = "lambda"                  # optional: a built-in name or a path relative to this file
    description = "..."                 # optional
    price_per_gb_s = 0.0000166667       # USD per GB-second (1 GB = 1024 MB)
    price_per_invocation = 2e-7         # USD per worker start
    cold_start_s = 0.35                 # start-up of a new worker
    warm_start_s = 0.01                 # start-up on a container kept warm
    keep_warm_s = 600                   # how long an idle container stays warm
    storage_latency_s = 0.01            # per request to the data store
    storage_bandwidth_bps = 80e6        # bytes/second of one worker's link to the data store
    concurrency_limit = 1000            # workers alive at once
    billing_granularity_s = 0.001       # billed time is rounded up to this
    host_cpus = 2                       # optional: CPUs of the one machine all workers share
    host_memory_mb = 24000              # optional: memory of that machine
    store_throughput_bps = 1.2e9        # optional: bytes/s the store serves to all workers at once
    store_op_s = 0.00003                # optional: store time per request, serialised
    shm_bandwidth_bps = 3e9             # optional: same-host shared-memory path between workers
    configs = [128, 256, { memory_mb = 1769, cpus = 1.0, cold_start_s = 0.3 }]

`configs` items are a memory size in MB or a table with `memory_mb` and optional `cpus`,
`cold_start_s`, `warm_start_s`. `host_cpus` is optional (absent: workers do not share CPUs;
tasks that execute at once on a host share its CPUs, see `simulator.host`). A file that
`extends` another inherits every field it does not set; `configs`, when set, replaces the
inherited list. Every error names the file and the field.

`ray` is the cached calibration of a Ray cluster when `planflow calibrate --launcher ray` wrote
one (`ray_calibration_path()`), else `simulator/platforms/ray.toml` as shipped.
`local` is not read from its file alone: `simulator/platforms/local.toml` holds its fixed
figures, which `simulator.host_platform` completes from this machine (or replaces with the
machine's calibration); a file that extends `local` extends that. `platform_from_dict` reads
back what `Platform.to_dict()` wrote (a plan carries its platform so), with the same checks.
"""

from __future__ import annotations

import math
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from simulator.errors import PlatformError
from simulator.platform import Platform, ResourceConfig

BUILTIN_NAMES = ("lambda", "local", "ray")
"""Platforms shipped as `simulator/platforms/<name>.toml`."""

_FLOAT_FIELDS = (
    "price_per_gb_s",
    "price_per_invocation",
    "cold_start_s",
    "warm_start_s",
    "keep_warm_s",
    "storage_latency_s",
    "storage_bandwidth_bps",
    "billing_granularity_s",
    "host_cpus",
    "store_throughput_bps",
    "store_op_s",
    "shm_bandwidth_bps",
)
_OPTIONAL = (
    "billing_granularity_s",
    "host_cpus",
    "host_memory_mb",
    "store_throughput_bps",
    "store_op_s",
    "shm_bandwidth_bps",
)
_STR_FIELDS = ("name", "extends", "description")
_INT_FIELDS = ("concurrency_limit", "host_memory_mb")
_KNOWN = (*_FLOAT_FIELDS, *_STR_FIELDS, *_INT_FIELDS, "configs")
_CONFIG_FIELDS = ("memory_mb", "cpus", "cold_start_s", "warm_start_s")


def load_platform_source(name_or_path: str) -> Platform:
    """Resolve a built-in name or a file path to a validated `Platform`."""
    if name_or_path == "local":
        from simulator.host_platform import local_platform

        return local_platform(_builtin("local"))
    if name_or_path == "ray":
        return ray_platform()
    if name_or_path in BUILTIN_NAMES:
        return _builtin(name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise PlatformError(
            f"unknown platform {name_or_path!r}: not a built-in ({', '.join(BUILTIN_NAMES)}) "
            "and no such file"
        )
    return load_platform_file(path)


RAY_CALIBRATION_FILE = "ray.toml"
"""The calibrated `ray` platform's file in the calibration directory (the last cluster that
`planflow calibrate --launcher ray` measured)."""

_ray_builtin = {"seen": False}


def ray_calibration_path() -> Path:
    """Where `planflow calibrate --launcher ray` caches the cluster's platform."""
    from simulator.host_platform import CALIBRATION_DIR_NAME, data_dir

    return data_dir() / CALIBRATION_DIR_NAME / RAY_CALIBRATION_FILE


def ray_platform() -> Platform:
    """`ray`: the cached calibration of a Ray cluster, else the shipped `ray.toml`."""
    cached = load_cached_calibration(ray_calibration_path(), "ray", "the cached Ray calibration",
                                     "planflow calibrate --launcher ray")
    if cached is not None:
        return cached
    _ray_builtin["seen"] = True
    return _builtin("ray")


def load_cached_calibration(path: Path, name: str, what: str, command: str) -> Platform | None:
    """The platform `name` cached at `path` by `command` (None: not calibrated yet); an
    unusable file is an error naming `what` it is and how to replace it."""
    if not path.is_file():
        return None
    try:
        return load_platform_file(path, name=name)
    except PlatformError as err:
        raise PlatformError(f"{what} is unusable: {err}; run `{command}` again, or delete "
                            f"{path}") from err


def ray_was_builtin() -> bool:
    """Whether this process loaded `ray` without a calibration (for the CLI's note)."""
    return _ray_builtin["seen"]


def load_platform_file(path: Path, name: str | None = None) -> Platform:
    """The platform a TOML file defines (named `name` when given, else as the file says)."""
    fields = _resolve_file(path, chain=())
    if name is not None:
        fields["name"] = name
    return _build(fields, where=str(path))


def platform_from_dict(data: dict[str, Any], where: str) -> Platform:
    """The platform `Platform.to_dict()` described (a plan carries its platform so)."""
    if not isinstance(data, dict):
        raise PlatformError(f"{where}: a platform must be a table of fields, got {data!r}")
    fields = {k: v for k, v in data.items() if v is not None}
    configs = fields.get("configs")
    if isinstance(configs, list):
        fields["configs"] = [
            {k: v for k, v in c.items() if v is not None} if isinstance(c, dict) else c
            for c in configs]
    return _build(_check_fields(fields, where), where)


def builtin_base(name: str) -> Platform:
    """A shipped platform file as written: for `local`, the fixed figures without the host
    (`simulator.host_platform` completes them)."""
    return _builtin(name)


@cache
def _builtin(name: str) -> Platform:
    """A shipped file as it is (for `local`: the fixed figures `host_platform` completes)."""
    text = resources.files("simulator").joinpath("platforms", f"{name}.toml").read_text("utf-8")
    where = f"built-in platform {name!r}"
    fields = _check_fields(_parse(text, where), where)
    fields.setdefault("name", name)
    return _build(fields, where)


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise PlatformError(f"{where}: not valid TOML: {err}") from err


def _resolve_file(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """Fields of `path` merged over what it extends (recursively); checked, not yet built."""
    resolved = path.resolve()
    if resolved in chain:
        names = " -> ".join(str(p) for p in (*chain, resolved))
        raise PlatformError(f"{path}: field 'extends' makes a cycle: {names}")
    try:
        text = path.read_text("utf-8")
    except OSError as err:
        raise PlatformError(f"{path}: cannot read platform file: {err}") from err
    fields = _check_fields(_parse(text, str(path)), str(path))
    fields.setdefault("name", path.stem)
    base_name = fields.pop("extends", None)
    if base_name is None:
        return fields
    if base_name in BUILTIN_NAMES:
        base = load_platform_source(base_name).to_dict()  # `local`: this machine
    else:
        base_path = path.parent / base_name
        if not base_path.is_file():
            raise PlatformError(
                f"{path}: field 'extends': {base_name!r} is neither a built-in platform "
                f"({', '.join(BUILTIN_NAMES)}) nor a file next to this one"
            )
        base = _resolve_file(base_path, (*chain, resolved))
    base.pop("description", None)
    return {**base, **fields}


def _check_fields(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Type- and range-check top-level fields; normalize `configs` to ResourceConfig objects."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _KNOWN:
            raise PlatformError(
                f"{where}: unknown field {key!r}; known fields: {', '.join(_KNOWN)}"
            )
        if key in _STR_FIELDS:
            out[key] = _check_str(value, where, key)
        elif key in _INT_FIELDS:
            out[key] = _check_int(value, where, key, minimum=1)
        elif key in _FLOAT_FIELDS:
            positive = key in (
                "storage_bandwidth_bps",
                "host_cpus",
                "store_throughput_bps",
                "shm_bandwidth_bps",
            )
            out[key] = _check_float(value, where, key, positive=positive)
        else:
            out[key] = _check_configs(value, where)
    return out


def _check_configs(value: Any, where: str) -> tuple[ResourceConfig, ...]:
    if not isinstance(value, list) or not value:
        raise PlatformError(f"{where}: field 'configs' must be a non-empty array")
    configs = []
    for i, item in enumerate(value):
        key = f"configs[{i}]"
        if isinstance(item, dict):
            unknown = set(item) - set(_CONFIG_FIELDS)
            if unknown:
                raise PlatformError(
                    f"{where}: field '{key}.{sorted(unknown)[0]}' is unknown; "
                    f"known: {', '.join(_CONFIG_FIELDS)}"
                )
            if "memory_mb" not in item:
                raise PlatformError(f"{where}: field '{key}.memory_mb' is missing")
            memory = _check_int(item["memory_mb"], where, f"{key}.memory_mb", minimum=1)
            cpus = item.get("cpus")
            cold, warm = item.get("cold_start_s"), item.get("warm_start_s")
            configs.append(
                ResourceConfig(
                    memory,
                    math.nan if cpus is None else _check_float(cpus, where, f"{key}.cpus", True),
                    None if cold is None else _check_float(cold, where, f"{key}.cold_start_s"),
                    None if warm is None else _check_float(warm, where, f"{key}.warm_start_s"),
                )
            )
        else:
            configs.append(ResourceConfig(_check_int(item, where, key, minimum=1)))
    return tuple(configs)


def _check_str(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str):
        raise PlatformError(f"{where}: field {key!r} must be a string, got {value!r}")
    return value


def _check_int(value: Any, where: str, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlatformError(f"{where}: field {key!r} must be an integer, got {value!r}")
    if value < minimum:
        raise PlatformError(f"{where}: field {key!r} must be >= {minimum}, got {value}")
    return value


def _check_float(value: Any, where: str, key: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PlatformError(f"{where}: field {key!r} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        bound = "> 0" if positive else ">= 0"
        raise PlatformError(f"{where}: field {key!r} must be a finite number {bound}, got {value}")
    return number


def _build(fields: dict[str, Any], where: str) -> Platform:
    missing = [k for k in (*_FLOAT_FIELDS, *_INT_FIELDS, "configs") if k not in fields]
    missing = [k for k in missing if k not in _OPTIONAL]
    if missing:
        raise PlatformError(f"{where}: field {missing[0]!r} is missing (missing: {missing})")
    fields = {k: v for k, v in fields.items() if k != "extends"}
    if isinstance(fields["configs"], list):  # inherited from a base's to_dict()
        fields["configs"] = tuple(ResourceConfig(**c) for c in fields["configs"])
    try:
        return Platform(**fields)
    except PlatformError as err:
        raise PlatformError(f"{where}: {err}") from err
