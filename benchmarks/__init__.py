"""Benchmarks of wdtnopt (installed as ``wdtnopt.benchmarks``).

``benchmarks/suites/`` holds the suites that ``wdtnopt bench`` runs (``paper``, ``solvers``,
``scaling``), ``benchmarks/configs/`` their presets (TOML, shipped as package data); the
``bench_*.py`` scripts beside them are the measurement scripts. docs/benchmarks.md
describes the suites.
"""


def check_counts(args, **least: int) -> None:
    """Refuse a count option of a benchmark script below its least value, before any work.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options; an option not in ``args`` (another subcommand's) is skipped.
    **least : int
        ``name=k``: ``args.name`` must be an integer >= k (``--name`` with dashes in the message).

    Raises
    ------
    wdtnopt.errors.WdtnoptError
        ``--NAME: expected an integer >= K, got V`` for the first option below its least value
        (the scripts print it as one line and exit 2, as the CLI does).
    """
    from wdtnopt.errors import WdtnoptError

    for name, k in least.items():
        value = getattr(args, name, k)
        if value < k:
            raise WdtnoptError(f"--{name.replace('_', '-')}: expected an integer >= {k}, got {value}")
