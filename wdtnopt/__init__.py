"""wdtnopt: certified optimization and learned baselines for wireless digital twin networks.

``import wdtnopt`` is light: numpy only. Solver back ends (cvxpy, pyomo, highspy), torch and dask
are imported by the functions that use them. Progress bars show on a terminal only
(``WDTNOPT_PROGRESS=1`` forces them on, ``=0`` off).
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The cost and simulation modules are not named after their functions (evaluate, simulate): a
# submodule import would otherwise rebind ``wdtnopt.evaluate`` to the module.
# public name -> module that defines it (imported on first use)
_LAZY = {
    "Scenario": "scenario",
    "Snapshot": "snapshot",
    "Decision": "cost",
    "Evaluation": "cost",
    "Violation": "cost",
    "evaluate": "cost",
    "Trace": "trace",
    "WindowedTrace": "trace",
    "generate_trace": "trace",
    "SimResult": "simulation",
    "simulate": "simulation",
    "Policy": "policies",
    "make_policy": "policies",
    "register_policy": "policies",
    "hindsight_bound": "bounds",
    "HindsightBound": "bounds",
    "gap": "bounds",
    "migration_bound": "bounds_migration",
    "map_tasks": "parallel",
    "Solution": "solvers",
    "solve": "solvers",
    "WdtnoptError": "errors",
    "ValidationError": "errors",
    "ScenarioError": "errors",
    "SnapshotError": "errors",
    "DecisionError": "errors",
    "PolicyError": "errors",
    "MobilityError": "errors",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wdtnopt' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover
    from .errors import DecisionError, MobilityError, PolicyError, ScenarioError, SnapshotError, ValidationError, WdtnoptError
    from .bounds import HindsightBound, gap, hindsight_bound
    from .cost import Decision, Evaluation, Violation, evaluate
    from .bounds_migration import migration_bound
    from .parallel import map_tasks
    from .policies import Policy, make_policy, register_policy
    from .scenario import Scenario
    from .simulation import SimResult, simulate
    from .snapshot import Snapshot
    from .solvers import Solution, solve
    from .trace import Trace, WindowedTrace, generate_trace
