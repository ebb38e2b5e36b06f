"""The benchmark suites run by ``wdtnopt bench`` (installed as ``wdtnopt.benchmarks.suites``).

A suite module defines ``tasks(cfg) -> list[Task]`` (pure tasks keyed by config and seed) and
``render(cfg, records, out, info) -> list[Path]`` (tables, figures and a Markdown report made
from the task results only). :func:`run_suite` ties them together through
:mod:`.runner`; docs/benchmarks.md describes the suites, presets and output files.
"""
from __future__ import annotations

import os
from importlib import import_module
from pathlib import Path
from typing import Any

from wdtnopt.errors import WdtnoptError
from wdtnopt.wording import counted

from .runner import PRESETS, SuiteRun, Task, code_versions, load_config, run_info, run_tasks, task_key

SUITES: dict[str, str] = {
    "paper": "wdtnopt.benchmarks.suites.paper",
    "solvers": "wdtnopt.benchmarks.suites.solvers",
    "scaling": "wdtnopt.benchmarks.suites.scaling",
    "mobility": "wdtnopt.benchmarks.suites.mobility",
    "resilience": "wdtnopt.benchmarks.suites.resilience",
    "sixg": "wdtnopt.benchmarks.suites.sixg",
}
"""Suite name -> module."""


def suite_module(name: str) -> Any:
    if name not in SUITES:
        raise WdtnoptError(f"suite: unknown suite {name!r}; expected one of {', '.join(SUITES)}")
    return import_module(SUITES[name])


def run_suite(name: str, preset: str | os.PathLike[str] = "smoke", out: str | os.PathLike[str] = "bench-out", *,
              workers: int | None = None, scheduler: Any = None, limit: int | None = None,
              progress: bool | str = True, argv: list[str] | None = None) -> tuple[SuiteRun, list[Path]]:
    """Run (or resume) suite ``name`` with ``preset`` into ``out``; render once every task is done.

    Returns the run (records, executed / reused / missing keys) and the files rendered (none while
    tasks are missing, e.g. with ``limit``).
    """
    mod = suite_module(name)
    if workers is not None and scheduler is not None:   # the cluster's workers run the tasks: K was unused
        raise WdtnoptError(f"workers: not used with a scheduler ({scheduler!r}): the cluster's own workers run the "
                           f"tasks; give one of workers= and scheduler=")
    cfg = load_config(name, preset)
    mod.check(cfg)        # every name and setting, before any task runs (docs/benchmarks.md)
    tasks = mod.tasks(cfg)
    if workers is None and scheduler is None:
        workers = cfg.get("workers")  # a suite may ask for fewer (the scaling suite times things: 1)
    run = run_tasks(tasks, out, workers=workers, scheduler=scheduler, limit=limit,
                    progress=f"bench {name}" if progress is True else progress)
    files: list[Path] = []
    if run.complete:
        records = [run.records[t.key] for t in tasks]
        info = run_info(name, cfg, argv)
        versions = code_versions(records)
        info["code"] = ("no code fingerprint recorded in these task files" if set(versions) == {"unknown"} else
                        f"all tasks computed by the same code ({next(iter(versions))})" if len(versions) == 1 else
                        "WARNING: tasks computed by different code versions: "
                        + ", ".join(f"{k} ({counted(v, 'task')})" for k, v in versions.items()))
        Path(out).mkdir(parents=True, exist_ok=True)   # (a suite of no tasks made none)
        files = mod.render(cfg, records, Path(out), info)
    return run, files


__all__ = ["SUITES", "PRESETS", "Task", "SuiteRun", "run_suite", "run_tasks", "load_config", "task_key", "suite_module"]
