"""Compile options: what `planflow compile` can be told, validated once.

Kept free of numpy and the simulator so the CLI can show its defaults without loading them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from planner.errors import UsageError

STRATEGIES = ("critical-path", "uniform", "wukong", "octoflows")
"""Planning strategies: `critical-path` plans; the others are baselines to compare with."""

DEFAULT_STRATEGY = "critical-path"

DEFAULT_PLATFORM = "local"
"""Plans target this machine unless told otherwise: `planflow compile` then `planflow run` is
the loop a user runs, and `run` executes here. `--platform lambda` plans for AWS Lambda's
configurations and prices (what the planner's cost quality is measured on)."""

DEFAULT_ROUNDS = 12
"""Rounds of the downgrade loop unless `--rounds` says otherwise (most plans settle in 2-5)."""


@dataclass(frozen=True)
class CompileOptions:
    """Everything `planflow compile` can be told (the CLI options of the same names)."""

    strategy: str = DEFAULT_STRATEGY
    platform: str = DEFAULT_PLATFORM
    memory_mb: int | None = None
    slowdown: float = 0.0
    rounds: int = DEFAULT_ROUNDS
    deadline_s: float | None = None
    quantile: float | None = None
    clustering: bool = True
    delayed_io: bool = True
    prewarm: bool = True
    preload: bool = True

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UsageError(f"unknown strategy '{self.strategy}'; choose one of "
                             f"{', '.join(STRATEGIES)}")
        if not self.slowdown >= 0:
            raise UsageError(f"--slowdown must be a fraction >= 0, got {self.slowdown}")
        if self.rounds < 0:
            raise UsageError(f"--rounds must be >= 0, got {self.rounds}")
        if self.deadline_s is not None and not self.deadline_s > 0:
            raise UsageError(f"--deadline-s must be > 0 seconds, got {self.deadline_s}")
        if self.quantile is not None and not 0 < self.quantile < 1:
            raise UsageError(f"--quantile must be in (0, 1), got {self.quantile}")
        if self.memory_mb is not None and self.memory_mb <= 0:
            raise UsageError(f"--memory-mb must be > 0, got {self.memory_mb}")
        if Path(self.platform).suffix == ".toml" and Path(self.platform).is_file():
            # a plan keeps its options: name the file so that it is found from any directory
            object.__setattr__(self, "platform", str(Path(self.platform).resolve()))

    def as_dict(self) -> Mapping[str, Any]:
        return asdict(self)
