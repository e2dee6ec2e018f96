"""The root of planflow's error tree and the errors of tracing, the IR, plan files and planning.

`planflow.errors` re-exports the whole tree. `simulator` and `metadata` import no other planflow
package, so their errors (`simulator.errors.SimulatorError`, `metadata.errors.MetadataError`) are
wrapped into these at the layer boundary (`raise PlanningError(...) from err`).

Every message names the object at fault and, where there is one, the fix.
"""

from __future__ import annotations


class PlanflowError(Exception):
    """Root of planflow's errors. `exit_code` is what the CLI exits with."""

    exit_code = 2


class UsageError(PlanflowError):
    """Bad input from the user: a missing module, a bad parameter, a bad option value."""


class WorkflowDefinitionError(UsageError):
    """The workflow program cannot be traced: no workflow, a bad argument, no reference returned."""


class ParameterError(UsageError):
    """A `-p name=value` that names no parameter or does not convert."""


class DaskGraphError(WorkflowDefinitionError):
    """A Dask collection planflow cannot run: a distributed Future or actor, a P2P shuffle,
    an async task, a collection hidden where results cannot be rebuilt."""


class GraphError(UsageError):
    """The traced program is not a valid task graph (cycle, missing parent, duplicate id)."""


class PlanFileError(UsageError):
    """A plan file that cannot be loaded: another schema version, truncated, not a plan."""


class PlanningError(PlanflowError):
    """The planner cannot produce a plan (no feasible configuration, infeasible deadline)."""
