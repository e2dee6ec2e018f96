"""Errors raised by the simulator.

`simulator` imports no other planflow package, so its errors root at `SimulatorError(Exception)`;
the planner wraps them (`raise PlanningError(...) from err`) at the layer boundary. Messages name
the object at fault (a field, a task index, a file) and, where there is one, the fix.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """An input the simulator cannot simulate: bad shapes, a cycle, an unknown configuration."""


class PlatformError(SimulatorError):
    """An invalid platform: unknown built-in, unreadable TOML, or a bad field value."""
