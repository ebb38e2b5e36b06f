"""Long-term subcommands: ``bound`` (the hindsight lower bound) and ``gap`` (optimality gaps)."""
from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import click

from ..io import atomic_write_json, atomic_write_text
from ..wording import counted
from .core import OutPath, build_policy, check_lyapunov_options, check_unique_policies, check_workers_scheduler, console, load_scenario, make_trace, progress_option, scenario_options, summary_table


def _parallel_options(f):
    f = click.option("--scheduler", default=None, help="Dask scheduler address (tcp://host:8786); default: local processes.")(f)
    f = click.option("--workers", type=click.IntRange(min=1), default=None, help="Local worker processes (default: all cores); not with --scheduler.")(f)
    f = click.option("--iters", type=click.IntRange(min=1), default=15, show_default=True, help="Multiplier updates of the dual ascent.")(f)
    f = click.option("--method", type=click.Choice(["exact", "fast"]), default="exact", show_default=True,
                     help="Snapshot method of the inner minima of the supergradient dual (both certified).")(f)
    f = click.option("--dual", type=click.Choice(["auto", "columns", "supergradient"]), default="auto", show_default=True,
                     help="How the dual is maximized: column generation over the trace (auto's choice) or the "
                          "supergradient climb over exactly solved slots (docs/longterm.md).")(f)
    return f


def _check_dual_options(dual, sc, scheduler) -> None:
    """Refuse --method or --workers given with ``--dual columns``: the columns dual solves no slots
    (docs/longterm.md, "Column generation over the whole trace"), so both were silently ignored. With
    ``--dual auto`` choosing the columns dual (no scheduler, a scenario it covers: the choice of
    ``hindsight_bound``), they are not refused but said to be unused, on one warning line."""
    from click.core import ParameterSource

    from ..bounds_columns import covers

    ctx = click.get_current_context()
    check_workers_scheduler(ctx.params.get("workers"), scheduler)
    given = [f"--{name}" for name in ("method", "workers")
             if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)]
    if dual == "columns" and given:
        raise click.UsageError(f"{'/'.join(given)}: only --dual supergradient solves slots with a method on worker "
                               f"processes; --dual columns solves none: drop {'/'.join(given)} or pass "
                               "--dual supergradient")
    if dual == "auto" and given and scheduler is None and covers(sc):
        click.echo(f"warning: {'/'.join(given)}: unused: --dual auto chose the columns dual, which solves no "
                   f"slots; pass --dual supergradient to solve slots with {'/'.join(given)}", err=True)


def _check_bound_fits(sc, slots, dual, scheduler, method, workers) -> None:
    """Refuse a hindsight bound that cannot fit in memory before the trace and the policies are
    computed (the choice ``hindsight_bound`` makes: columns unless a scheduler, the supergradient
    dual or a semantic menu asks otherwise; a supergradient bound on a Dask cluster is not estimated
    here, its slots live in the cluster's workers)."""
    from ..bounds import check_bound_fits
    from ..bounds_columns import covers
    from ..parallel import StickyPool

    if scheduler is not None:
        return
    if dual == "columns" or (dual == "auto" and covers(sc)):
        check_bound_fits(sc.n_mus, sc.n_bss, slots)
    else:
        check_bound_fits(sc.n_mus, sc.n_bss, slots, dual="supergradient", method=method,
                         workers=StickyPool(workers).size)


@click.command("bound")
@scenario_options
@click.option("--eps", type=click.FloatRange(0, 1), default=None, help="Failure-ratio target of every MU (default: the scenario's).")
@_parallel_options
@click.option("-o", "--out", type=OutPath(dir_okay=False), default=None, help="JSON file for the bound and its multipliers.")
@progress_option
def bound_cmd(scenario_spec, n_mus, n_bss, slots, seed, eps, method, dual, iters, workers, scheduler, out, progress,
              mobility=None):
    """Hindsight lower bound on the energy of any causal policy on one trace."""
    from ..bounds import hindsight_bound

    sc = load_scenario(scenario_spec, n_mus, n_bss)
    _check_dual_options(dual, sc, scheduler)
    _check_bound_fits(sc, slots, dual, scheduler, method, workers)
    trace = make_trace(sc, seed, slots, mobility)
    t0 = time.perf_counter()
    hb = hindsight_bound(trace, eps=eps, iters=iters, method=method, workers=workers, scheduler=scheduler, progress=progress,
                         dual=dual)
    secs = time.perf_counter() - t0
    console.print(f"hindsight lower bound, N={sc.n_mus}, {counted(slots, 'slot')}, seed {seed}, eps {float(hb.eps.max()):g}: "
                  f"[bold]{hb.energy_per_mu_slot * 1e3:.5f} mJ[/bold] per MU per slot "
                  f"({counted(len(hb.points), 'dual evaluation')}, {secs:.1f} s)")
    if out:
        atomic_write_json(out, {"energy_per_mu_slot": hb.energy_per_mu_slot, "total_energy_j": hb.total_energy,
                                "eps": hb.eps.tolist(), "mu": hb.mu.tolist(), "history": hb.history(),
                                "slots": slots, "seed": seed, "n_mus": sc.n_mus, "method": hb.method})
        console.print(f"wrote {out}")


@click.command("gap")
@click.option("--policy", "policies", multiple=True, default=("static", "follow", "oracle", "lyapunov"), show_default=True,
              help="Policies to compare (repeat).")
@scenario_options
@click.option("--V", "v", type=click.FloatRange(min=0, min_open=True), default=None, help="Lyapunov trade-off V.")
@click.option("--eps", type=click.FloatRange(0, 1), default=None,
              help="Failure-ratio target per MU of the lyapunov and lyapunov-fa policies (the bound is taken at "
                   "each policy's own ratios).")
@click.option("--theta", type=click.FloatRange(min=0), default=None, help="Lyapunov place-holder backlog.")
@_parallel_options
@click.option("--migration-aware", is_flag=True, default=False,
              help="Also each policy's gap to the migration-aware bound (it starts from the hindsight bound's prices).")
@click.option("-o", "--out", type=OutPath(file_okay=False), default=None, help="Folder for gap.csv and gap.md.")
@progress_option
def gap_cmd(policies, scenario_spec, n_mus, n_bss, slots, seed, v, eps, theta, method, dual, iters, workers, scheduler,
            migration_aware, out, progress, mobility=None):
    """Optimality gap of policies against the hindsight bound at their own failure ratios."""
    from ..bounds import gap, hindsight_bound
    from ..simulation import simulate

    check_unique_policies(policies)
    check_lyapunov_options(policies, v, eps, theta)
    sc = load_scenario(scenario_spec, n_mus, n_bss)
    if migration_aware:
        from ..bounds_migration import uncovered_setting

        setting = uncovered_setting(sc)   # before minutes of simulation, not after
        if setting is not None:
            raise click.UsageError(f"--migration-aware: scenarios with {setting} are not covered by the "
                                   f"migration-aware bound; drop --migration-aware or change the scenario")
    _check_dual_options(dual, sc, scheduler)
    _check_bound_fits(sc, slots, dual, scheduler, method, workers)
    trace = make_trace(sc, seed, slots, mobility)
    results = []
    for name in policies:
        t0 = time.perf_counter()
        results.append((simulate(build_policy(name, v, eps, theta), trace, progress=progress), time.perf_counter() - t0))
    console.print(summary_table(results, f"N={sc.n_mus}, {counted(slots, 'slot')}, seed {seed}"))
    hb = hindsight_bound(trace, iters=iters, method=method, workers=workers, scheduler=scheduler, progress=progress,
                         dual=dual)
    report = gap([r for r, _ in results], trace, bound=hb, iters=max(iters // 2, 1))
    console.print(report.table())
    if migration_aware:
        from ..bounds_migration import migration_bound

        for (r, _), row in zip(results, report.rows):
            mb = migration_bound(trace, hb, r.failure_ratio_per_mu).energy_per_mu_slot
            g = (r.energy_per_mu_slot - mb) / mb if mb > 0 else float("inf")
            console.print(f"{r.policy}: migration-aware bound {mb * 1e3:.4f} mJ, gap {100 * g:.1f}% "
                          f"(hindsight bound: {100 * row.gap:.1f}%)")
    if out:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["policy", "energy_per_mu_slot_j", "failure_ratio", "bound_per_mu_slot_j", "gap"])
        for r in report.rows:
            w.writerow([r.policy, r.energy_per_mu_slot, r.failure_ratio, r.bound_per_mu_slot, r.gap])
        atomic_write_text(Path(out) / "gap.csv", buf.getvalue())
        atomic_write_text(Path(out) / "gap.md", report.to_markdown() + "\n")
        console.print(f"wrote {Path(out) / 'gap.csv'} and gap.md")
