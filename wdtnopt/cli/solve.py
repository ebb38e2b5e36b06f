"""``wdtnopt solve SNAPSHOT.json``: solve one snapshot, print a per-server table, write the solution."""
from __future__ import annotations

import math
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from ..solvers import methods  # numpy only: the method names for --method
from ..solvers.options import THREADS_HELP, capped_threads  # the standard library only
from ..progress import progress_shown
from ..wording import counted
from .core import OutPath

console = Console()



@click.command("solve")
@click.argument("snapshot_path", metavar="SNAPSHOT.json", type=click.Path(dir_okay=False))
@click.option("--method", type=click.Choice(methods()), default="exact", show_default=True,
              help="Solver: exact (certified optimum), fast (large snapshots, certified bound), pyomo (the MINLP "
                   "with SCIP), relaxation (bound + rounding).")
@click.option("--gap", type=click.FloatRange(min=0.0), default=None,
              help="Relative optimality gap (default: the method's, 1e-6; fast 0.01).")
@click.option("--time-limit", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help="Seconds; stops with the incumbent and a certified bound (status time_limit). "
                   "Default: the method's (pyomo 300 s, the others none).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help=THREADS_HELP + ".")
@click.option("--option", "options", multiple=True, metavar="NAME=VALUE",
              help="A method option (repeatable), e.g. --option max_iterations=50 --option oracle=cvxpy "
                   "--option price_cuts=0.7,1,1.4 (a comma list is a tuple); "
                   "docs/solvers.md lists each method's options.")
@click.option("-o", "--output", type=OutPath(dir_okay=False), default=None, help="Write the solution JSON here.")
def solve_cmd(snapshot_path: str, method: str, gap: float | None, time_limit: float | None, threads: int,
              options: tuple[str, ...], output: str | None) -> None:
    """Solve a snapshot JSON file; print a table, write the solution."""
    from ..io import atomic_write_json
    from ..snapshot import Snapshot
    from ..solvers import solve

    from ..solvers import SolverError

    extra = parse_options(options)
    check_tuple_options(method, extra, options)
    for name in ("gap", "time_limit", "threads", "method"):
        if name in extra:  # one value per option: the flag's
            none = " (inf: none)" if name == "time_limit" else ""
            raise SolverError(f"--option {name}=...: {name} has its own flag, --{name.replace('_', '-')}{none}")
    if "snapshot" in extra:
        raise SolverError("--option snapshot=...: the snapshot is the SNAPSHOT.json argument")
    snap = Snapshot.load(snapshot_path)
    if gap is not None:   # else the method's own default (fast asked 1e-6, not its 1%, when the flag had one)
        extra["gap"] = gap
    if time_limit is not None:   # else the method's own default (pyomo 300 s; docs/solvers.md, "Options")
        extra["time_limit"] = time_limit
    threads, capped = capped_threads(threads, "--threads ")   # as the options would, said on one line
    if capped:
        click.echo(f"warning: {capped}", err=True)
    note = default_limit_note(method, extra)
    if note and progress_shown():   # as progress bars: on a terminal (stderr stays one line on an error)
        click.echo(note, err=True)
    sol = solve(snap, method=method, threads=threads, **extra)
    console.print(solution_table(snap, sol))
    console.print(summary_line(sol))
    if output:
        atomic_write_json(output, sol.to_dict())
        console.print(f"solution written to {output}")


def default_limit_note(method: str, extra: dict[str, Any]) -> str | None:
    """A one-line note (for stderr, before a solve that prints nothing until it returns) when
    ``method`` runs under a time limit of its own default (pyomo: 300 s) that the user did not set;
    None otherwise.
    """
    import dataclasses

    from ..solvers import OPTIONS

    cls = OPTIONS.get(method)
    fields = {f.name: f for f in dataclasses.fields(cls)} if cls is not None else {}
    limit = fields["time_limit"].default if "time_limit" in fields else None
    if "time_limit" in extra or not isinstance(limit, (int, float)) or not math.isfinite(limit):
        return None
    return (f"note: {method} prints nothing until it returns, at the latest at its default time limit of "
            f"{limit:g} s (then with its incumbent and a certified bound); --time-limit SECONDS changes it")


def parse_options(items: tuple[str, ...]) -> dict[str, Any]:
    """``NAME=VALUE`` strings to keyword options (int, float, true/false, none, a comma list
    ``0.7,1,1.4`` or ``[0.7, 1, 1.4]`` as a tuple, or the string).

    Raises
    ------
    SolverError
        An item without ``=``, a NAME given twice (the last one silently won), or a comma list with
        an empty entry other than a trailing comma (``0.7,,1``); unknown names are reported by the
        method itself.
    """
    from ..solvers import SolverError

    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise SolverError(f"--option: expected NAME=VALUE, got {item!r}")
        name = name.strip()
        if name in out:
            raise SolverError(f"--option {name}=...: given twice; give each option once")
        text = text.strip()
        inner = text[1:-1] if len(text) >= 2 and text[0] + text[-1] in ("[]", "()") else text
        parts = inner.split(",")
        if "," in inner and any(not part.strip() for part in parts[:-1]):
            # only a trailing comma may be empty (1.0, is one value); 0.7,,1 was read as (0.7, 1)
            raise SolverError(f"--option {name}={text}: an empty entry in the comma list; "
                              f"expected values separated by single commas, e.g. {name}=0.7,1,1.4")
        out[name] = _value(text)
    return out


def check_tuple_options(method: str, extra: dict[str, Any], items: tuple[str, ...]) -> None:
    """Refuse a tuple option of ``method`` given as one value (``--option server_prices=1.0``), naming
    the comma form that gives a tuple from the command line (docs/solvers.md, "Options").

    Raises
    ------
    SolverError
        Naming the option, the value given and the forms ``1.0,`` (one factor) and ``0.7,1,1.4``.
    """
    import dataclasses
    import typing

    from ..solvers import OPTIONS, SolverError

    cls = OPTIONS.get(method)
    if cls is None:
        return
    hints = typing.get_type_hints(cls)
    texts = {item.partition("=")[0].strip(): item.partition("=")[2].strip() for item in items}
    for f in dataclasses.fields(cls):
        if f.name in extra and typing.get_origin(hints[f.name]) is tuple and not isinstance(extra[f.name], tuple):
            given = texts.get(f.name, "")
            raise SolverError(f"--option {f.name}={given}: {f.name} is a tuple, given as a comma list: "
                              f"--option {f.name}={given or '1.0'}, (one value, trailing comma) or "
                              f"--option {f.name}=0.7,1,1.4")


def _value(text: str) -> Any:
    text = text.strip()
    bracketed = len(text) >= 2 and text[0] + text[-1] in ("[]", "()")
    if bracketed or "," in text:   # a list: price_cuts=0.7,1,1.4 or [0.7, 1, 1.4]
        inner = text[1:-1] if bracketed else text
        return tuple(_value(part) for part in inner.split(",") if part.strip())
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def solution_table(snap: Any, sol: Any) -> Table:
    """Per server: hosted DTs, requests, served, CPU use, energy and failures."""
    table = Table(title=f"{counted(snap.n_mus, 'MU')}, {counted(snap.n_bss, 'server')}: {sol.method} ({sol.status})")
    for col in ("server", "hosted DTs", "req", "served", "CPU", "storage", "energy mJ", "moved in"):
        table.add_column(col, justify="left" if col == "hosted DTs" else "right", no_wrap=col != "hosted DTs",
                         overflow="fold")
    req = snap.request
    for m in range(snap.n_bss):
        here = sol.placement == m
        hosted = np.flatnonzero(here)
        names = ",".join(str(int(n)) for n in hosted[:10]) + (f",... ({hosted.size})" if hosted.size > 10 else "")
        cpu = float(sol.cpu_hz[here].sum())
        cpu_share = f"{cpu / snap.cpu_hz[m]:.1%}" if snap.cpu_hz[m] > 0 else "-"
        sto = float(snap.dt_size_bits[here].sum())
        sto_share = f"{sto / snap.storage_bits[m]:.1%}" if snap.storage_bits[m] > 0 else "-"
        moved = int((here & (sol.placement != snap.placement_prev)).sum())
        table.add_row(str(m), names or "-", str(int((here & req).sum())), str(int((here & sol.served).sum())),
                      cpu_share, sto_share, f"{float(sol.energy[here].sum()) * 1e3:.4f}", str(moved))
    table.add_row("total", str(snap.n_mus), str(int(req.sum())), str(int(sol.served.sum())), "", "",
                  f"{float(sol.energy.sum()) * 1e3:.4f}", str(int((sol.placement != snap.placement_prev).sum())),
                  end_section=True)
    return table


def summary_line(sol: Any) -> str:
    gap = "-" if not math.isfinite(sol.gap) else f"{sol.gap:.2e}"
    return (f"objective {sol.objective:.10g}   bound {sol.bound:.10g}   gap {gap}   "
            f"status {sol.status}   time {sol.solve_time_s:.3f} s")
