"""``wdtnopt bench``: run a benchmark suite (paper, solvers, scaling, mobility, resilience, sixg), resumable, local or on Dask."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..wording import counted
from .core import OutPath, check_workers_scheduler, console, progress_option


@click.command("bench")
@click.argument("suite", type=click.Choice(["paper", "solvers", "scaling", "mobility", "resilience", "sixg"]))
@click.option("--preset", default="smoke", show_default=True,
              help="smoke (minutes, CI), default (about 2 h on 2 cores), full (a cluster), a suite's own preset "
                   "(solvers, scaling: loaded, loaded_smoke), or a TOML file of overrides.")
@click.option("--out", "out", type=OutPath(file_okay=False), required=True,
              help="Output folder: tasks/ (one JSON per finished task), agents/, CSV, PNG, report.md. Rerun to resume.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: all cores; the scaling suite: 1); not with --scheduler.")
@click.option("--scheduler", default=None, help="Dask scheduler address (tcp://host:8786): run the tasks on that cluster's workers (not with --workers).")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="Execute at most this many missing tasks, then stop (a partial run; rerun to finish).")
@progress_option
def bench_cmd(suite, preset, out, workers, scheduler, limit, progress):
    """Run (or resume) a benchmark suite; render tables, figures and report.md when every task is done."""
    from wdtnopt.benchmarks.suites import run_suite

    check_workers_scheduler(workers, scheduler)
    t0 = time.perf_counter()
    run, files = run_suite(suite, preset, out, workers=workers, scheduler=scheduler, limit=limit, progress=progress,
                           argv=["wdtnopt", *sys.argv[1:]] if sys.argv and sys.argv[0].endswith("wdtnopt") else None)
    n = len(run.records) + len(run.missing)
    console.print(f"suite {suite} ({preset}): {counted(n, 'task')}, {len(run.executed)} executed, {len(run.reused)} reused "
                  f"from {Path(out) / 'tasks'}, {len(run.missing)} missing ({time.perf_counter() - t0:.1f} s)")
    if files:
        console.print(f"wrote {counted(len(files), 'file')} to {out}: " + ", ".join(f.name for f in files))
    else:
        console.print("not rendered yet: rerun the same command to execute the missing tasks")
