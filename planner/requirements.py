"""Workflow requirements: the third-party packages a workflow's tasks import.

A workflow declares them with `@workflow(requirements=["numpy", "pillow>=10"])`, or in a
`requirements.txt` beside its module (one PEP 508 requirement per line; `#` comments; both
sources are merged, the decorator's first). They are resolved at compile time against what is
installed here: each is *pinned* to the installed version (`numpy==2.1.3`), and a package that
is not installed, or whose installed version does not satisfy the requirement, is a compile-time
`RequirementError` naming it. The plan records the pinned set; the local launcher prepares one
environment per pinned set before the run (`runtime.environments`).

Requirements whose environment markers do not apply here (`; sys_platform == "win32"`) are
dropped. Lines with pip options (`-r`, `-e`, `--index-url`) are refused: a plan must name exact
packages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from planner.errors import UsageError

REQUIREMENTS_FILE = "requirements.txt"
"""The file beside a workflow module that lists its requirements."""


class RequirementError(UsageError):
    """A requirement that is malformed, not installed here, or installed at a version it
    excludes."""


def read_file(path: Path) -> list[str]:
    """The requirements a `requirements.txt` lists (comments and blank lines skipped)."""
    out = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise RequirementError(
                f"{path}:{number}: '{line}': pip options are not supported in a workflow's "
                "requirements; list packages (name and version specifier) only"
            )
        out.append(line)
    return out


def declared(module_file: str | None, listed: Sequence[str]) -> tuple[str, ...]:
    """The requirements of a workflow: `listed` (the decorator's), then its module's file."""
    found = list(listed)
    if module_file:
        path = Path(module_file).resolve().with_name(REQUIREMENTS_FILE)
        if path.is_file():
            found += read_file(path)
    return tuple(dict.fromkeys(found))


def pin(requirements: Iterable[str], workflow: str) -> tuple[str, ...]:
    """Each requirement pinned to the version installed here (`name==version`, sorted by
    name); RequirementError naming the first that is malformed, missing or excluded."""
    pinned: dict[str, str] = {}
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement as err:
            raise RequirementError(
                f"workflow '{workflow}': requirement '{text}' is not valid ({err})"
            ) from None
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            raise RequirementError(
                f"workflow '{workflow}': requirement '{text}': package '{req.name}' is not "
                f"installed here; install it (pip install '{text}') and compile again, or "
                "remove it from the workflow's requirements"
            ) from None
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            raise RequirementError(
                f"workflow '{workflow}': requirement '{text}': '{req.name}' {version} is "
                f"installed here, which '{req.specifier}' excludes; install a matching "
                "version and compile again"
            )
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        pinned[name] = f"{name}{extras}=={version}"
    return tuple(pinned[k] for k in sorted(pinned))
