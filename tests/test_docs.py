"""The repository explains itself: the public entry points document their parameters, results and
errors (numpydoc), and the lazy export table of ``wdtnopt`` matches its typing block."""
from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

import wdtnopt

ROOT = Path(__file__).resolve().parents[1]


def _typing_block_imports() -> dict[str, str]:
    """name -> module of every import under ``if TYPE_CHECKING:`` in wdtnopt/__init__.py."""
    tree = ast.parse((ROOT / "wdtnopt" / "__init__.py").read_text())
    out: dict[str, str] = {}
    blocks = [n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", None) == "TYPE_CHECKING"]
    assert len(blocks) == 1
    for node in ast.walk(blocks[0]):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 1, "the typing block imports from the package's own modules"
            for alias in node.names:
                out[alias.asname or alias.name] = node.module
    return out


def test_lazy_export_table_matches_typing_block():
    typed = _typing_block_imports()
    assert typed == wdtnopt._LAZY
    assert sorted(wdtnopt.__all__) == sorted(typed)
    for name, module in typed.items():          # every entry resolves to the object of its module
        assert getattr(wdtnopt, name) is getattr(importlib.import_module(f"wdtnopt.{module}"), name)


def _entry_points():
    from wdtnopt.env import BatchedWdtnEnv, TeamEnv, WdtnParallelEnv, env, parallel_env
    from wdtnopt.policies.lyapunov import LyapunovPolicy, MyopicOraclePolicy, SnapshotSolverPolicy
    from wdtnopt.solvers.allocation import allocate

    # object, numpydoc sections its docstring must have (P: Parameters, R: Returns, E: Raises)
    return [
        (wdtnopt.solve, "PRE"), (wdtnopt.evaluate, "PRE"), (wdtnopt.generate_trace, "PRE"),
        (wdtnopt.Trace.snapshot, "PRE"), (wdtnopt.simulate, "PRE"), (wdtnopt.hindsight_bound, "PRE"),
        (wdtnopt.gap, "PRE"), (allocate, "PR"), (wdtnopt.make_policy, "PRE"), (wdtnopt.register_policy, "P"),
        (parallel_env, "R"), (env, "PRE"), (WdtnParallelEnv, "PE"), (BatchedWdtnEnv, "PE"), (TeamEnv, "PE"),
        (WdtnParallelEnv.render, "RE"), (SnapshotSolverPolicy, "PE"), (LyapunovPolicy, "PE"),
        (MyopicOraclePolicy, "PE"), (wdtnopt.Scenario.paper, "PRE"), (wdtnopt.Scenario.load, "PRE"),
        (wdtnopt.Snapshot.from_dict, "PRE"), (wdtnopt.Snapshot.load, "PRE"),
    ]


NAMES = {"P": "Parameters", "R": "Returns", "E": "Raises"}


@pytest.mark.parametrize("obj,need", _entry_points(), ids=lambda v: getattr(v, "__qualname__", v))
def test_public_entry_points_have_numpydoc_sections(obj, need):
    doc = inspect.getdoc(obj) or ""
    heads = set(re.findall(r"^(\w+)\n-{3,}$", doc, flags=re.M))      # numpydoc section headers
    want = {NAMES[c] for c in need}
    assert want <= heads, f"{obj.__qualname__}: sections {sorted(heads)}, want {sorted(want)}"
    if "Parameters" in want and not inspect.isclass(obj):
        params = [p for p in inspect.signature(obj).parameters if p not in ("self", "options", "bound_options")]
        documented = " ".join(re.findall(r"^(\S[^:\n]*?)(?: :|$)", doc.split("Parameters\n")[1], flags=re.M))
        missing = [p for p in params if p not in documented]
        assert not missing, f"{obj.__qualname__}: parameters {missing} not documented"
