"""planflow's whole error tree in one place (the classes live in the layer that raises them)."""

from planner.errors import (
    DaskGraphError,
    GraphError,
    ParameterError,
    PlanFileError,
    PlanflowError,
    PlanningError,
    UsageError,
    WorkflowDefinitionError,
)
from runtime.errors import RunError, StoreError, TaskFailed

__all__ = [
    "DaskGraphError",
    "GraphError",
    "ParameterError",
    "PlanFileError",
    "PlanflowError",
    "PlanningError",
    "RunError",
    "StoreError",
    "TaskFailed",
    "UsageError",
    "WorkflowDefinitionError",
]
