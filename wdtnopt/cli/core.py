"""Core subcommands: ``demo``, ``simulate``, ``snapshot``; and the options they share."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..errors import WdtnoptError
from ..scenario import Scenario
from ..wording import counted

console = Console()


class OutPath(click.Path):
    """``click.Path`` for a file or folder to write: an empty name (an unset shell variable in
    ``--out "$DIR"``) is refused; as a folder it meant the current one, where a run then spread its
    files, and as a file it silently wrote nothing."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail(f"expected a file or folder name, got {value!r} (an unset variable?)", param, ctx)
        value = super().convert(value, param, ctx)
        # where the path is to be made, before the work: a file on the way or a folder without write
        # permission failed only at the end (a long solve or bound lost, 'File exists' for a file)
        path = Path(os.fsdecode(value)).absolute()
        folder = path if self.file_okay is False else path.parent
        # a broken symbolic link does not "exist" but cannot be made into a folder ('File exists' at the end)
        while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
            folder = folder.parent
        if folder.is_symlink() and not folder.exists():
            self.fail(f"cannot write {value}: {folder} is a broken link (to {os.readlink(folder)})", param, ctx)
        if not folder.is_dir():
            self.fail(f"cannot write {value}: {folder} is a file, not a folder", param, ctx)
        if not os.access(folder, os.W_OK | os.X_OK):
            self.fail(f"cannot write {value}: no permission to write in {folder}", param, ctx)
        return value


def load_scenario(spec: str, n_mus: int | None = None, n_bss: int | None = None) -> Scenario:
    """``paper`` or a TOML/JSON file, with optional size overrides."""
    overrides = {k: v for k, v in (("n_mus", n_mus), ("n_bss", n_bss)) if v is not None}
    if spec == "paper":
        return Scenario.paper(**overrides)
    if not Path(spec).is_file():
        raise WdtnoptError(f"--scenario: expected 'paper' or an existing .toml/.json file, got {spec!r}")
    return Scenario.load(spec, **overrides)   # per-server lists in the file may then match --n-bss


def scenario_options(f: Any) -> Any:
    """--scenario, --mobility, --n-mus, --n-bss, --slots, --seed."""
    f = mobility_option(f)
    f = click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Trace seed.")(f)
    f = click.option("--slots", type=click.IntRange(min=1), default=100, show_default=True, help="Slots to simulate.")(f)
    f = click.option("--n-bss", type=click.IntRange(min=1), default=None, help="Override the number of BSs.")(f)
    f = click.option("--n-mus", type=click.IntRange(min=1), default=None, help="Override the number of MUs.")(f)
    f = click.option("--scenario", "scenario_spec", default="paper", show_default=True,
                     help="'paper' or a TOML/JSON scenario file.")(f)
    return f


def mobility_option(f: Any) -> Any:
    """--mobility FILE: MU positions replayed from a SUMO FCD file or a recorded table."""
    return click.option("--mobility", "mobility", type=click.Path(dir_okay=False), default=None,
                        help="Replay MU positions from a SUMO FCD file (.xml, .xml.gz) or a CSV/Parquet table "
                             "(time_s,id,x_m,y_m), cleaned on the way in, or run SUMO on "
                             "'sumo-grid:seed=7,duration_s=300' (docs/mobility.md); default: Gauss-Markov.")(f)


def progress_option(f: Any) -> Any:
    """--progress/--no-progress of the long commands (simulate, bound, gap, bench, demo)."""
    return click.option("--progress/--no-progress", default=True, show_default=True,
                        help="Progress bars with ETA on stderr (on a terminal; WDTNOPT_PROGRESS=1 forces them, "
                             "=0 silences them).")(f)


def load_mobility_source(path: str | None) -> Any:
    """The mobility source of ``--mobility`` (None: Gauss-Markov); the file's format is checked now,
    its records when the first trace needs them."""
    if path is None:
        return None
    from ..processes.mobility import resolve_mobility
    return resolve_mobility(path)


def make_trace(sc: Scenario, seed: int, slots: int, mobility: str | None) -> Any:
    """``generate_trace`` with the ``--mobility`` file; prints the cleaning report's summary line."""
    from ..trace import generate_trace

    trace = generate_trace(sc, seed=seed, slots=slots, mobility=load_mobility_source(mobility))
    if trace.mobility_report is not None:
        console.print(f"[dim]mobility {trace.mobility_report.summary()}[/dim]")
    return trace


def summary_table(results: list[Any], title: str) -> Table:
    table = Table(title=title)
    for col in ("policy", "energy / MU / slot (mJ)", "failure ratio", "worst MU failure ratio", "migrations", "time (s)"):
        # a long policy name folds onto more lines: cut to "pretrained…", two agents read the same
        table.add_column(col, **({"justify": "left", "overflow": "fold"} if col == "policy" else {"justify": "right"}))
    for r, secs in results:
        table.add_row(r.policy, f"{r.energy_per_mu_slot * 1e3:.4f}", f"{r.failure_ratio:.4f}",
                      f"{r.failure_ratio_per_mu.max():.4f}", str(r.migrations), f"{secs:.2f}")
    return table


LYAPUNOV_POLICIES = ("lyapunov", "lyapunov-fa")
"""The policies that take --V, --eps and --theta."""


def build_policy(name: str, v: float | None = None, eps: float | None = None, theta: float | None = None) -> Any:
    """A registered policy; --V, --eps and --theta go to the Lyapunov scheduler and its failure-aware
    variant (ignored by the others)."""
    from ..policies import make_policy

    opts: dict[str, Any] = {}
    if name in LYAPUNOV_POLICIES:
        opts = {k: val for k, val in (("V", v), ("eps", eps), ("theta", theta)) if val is not None}
    pol = make_policy(name, **opts)
    if name.startswith("checkpoint:"):   # two runs of one algorithm were two rows "checkpoint:ALGO"
        pol.name = f"{name} ({pol.name.partition(':')[2]})"
    return pol


def check_workers_scheduler(workers: int | None, scheduler: str | None) -> None:
    """Refuse --workers with --scheduler: the Dask cluster's own workers run the tasks, so the count
    of local processes was silently unused (``wdtnopt bench``, ``bound``, ``gap``)."""
    if workers is not None and scheduler is not None:
        raise click.UsageError(f"--workers: not used with --scheduler {scheduler}: the Dask cluster's own workers run "
                               "the tasks (size it with 'dask worker --nworkers'); drop --workers or --scheduler")


def check_lyapunov_options(policies: tuple[str, ...], v: float | None, eps: float | None, theta: float | None) -> None:
    """Refuse --V, --eps or --theta when none of ``policies`` takes them (they were silently ignored)."""
    given = [flag for flag, val in (("--V", v), ("--eps", eps), ("--theta", theta)) if val is not None]
    if given and not any(name in LYAPUNOV_POLICIES for name in policies):
        raise click.UsageError(f"{'/'.join(given)}: only the lyapunov and lyapunov-fa policies take "
                               f"{'it' if len(given) == 1 else 'them'}, and none of {', '.join(policies)} is one")


def check_unique_policies(policies: tuple[str, ...]) -> None:
    """Refuse a ``--policy`` given twice (it ran twice and its CSV table was written over)."""
    seen: set[str] = set()
    for name in policies:
        if name in seen:
            raise click.UsageError(f"--policy {name}: given twice; give each policy once")
        seen.add(name)


def policy_csv_name(name: str, seed: int) -> str:
    """The file name of a policy's per-slot table written by ``simulate --out``."""
    return f"{name.replace(':', '_').replace('/', '_')}_seed{seed}.csv"


def check_csv_names(policies: tuple[str, ...], seed: int) -> None:
    """Refuse two policies whose tables would take one file name (``checkpoint:runs/a`` and
    ``checkpoint:runs_a``: the second was written over the first)."""
    seen: dict[str, str] = {}
    for name in policies:
        csv = policy_csv_name(name, seed)
        if csv in seen:
            raise click.UsageError(f"--policy {name}: its table {csv} is --policy {seen[csv]}'s too; "
                                   f"rename one of their folders")
        seen[csv] = name


@click.command("simulate")
@click.option("--policy", "policies", multiple=True, default=("follow",), show_default=True,
              help="Policy name (static, follow, predictive, oracle, lyapunov, oracle-fa, lyapunov-fa, "
                   "checkpoint:DIR, pretrained:ALGO); repeat to compare.")
@scenario_options
@click.option("--V", "v", type=click.FloatRange(min=0, min_open=True), default=None, help="Lyapunov trade-off V.")
@click.option("--eps", type=click.FloatRange(0, 1), default=None,
              help="Target failure ratio per MU of the lyapunov and lyapunov-fa policies.")
@click.option("--theta", type=click.FloatRange(min=0), default=None, help="Lyapunov place-holder backlog.")
@click.option("-o", "--out", type=OutPath(file_okay=False), default=None, help="Folder for the per-slot CSV tables.")
@progress_option
def simulate_cmd(policies: tuple[str, ...], scenario_spec: str, n_mus: int | None, n_bss: int | None,
                 slots: int, seed: int, v: float | None, eps: float | None, theta: float | None, out: str | None,
                 progress: bool, mobility: str | None = None) -> None:
    """Simulate policies on one generated trace; print a summary, write per-slot CSV."""
    from ..simulation import check_run_fits, check_simulation_fits, simulate
    from ..trace import plan_windows

    check_unique_policies(policies)
    if out:
        check_csv_names(policies, seed)
    check_lyapunov_options(policies, v, eps, theta)
    sc = load_scenario(scenario_spec, n_mus, n_bss)
    window = plan_windows(sc.n_mus, sc.n_bss, slots)      # refuse what cannot fit before generating anything
    check_simulation_fits(sc.n_mus, slots, runs=len(policies))
    check_run_fits(sc.n_mus, sc.n_bss, slots, policies, window)   # trace, records and per-slot work together
    trace = make_trace(sc, seed, slots, mobility)
    rows = []
    for name in policies:
        pol = build_policy(name, v, eps, theta)
        t0 = time.perf_counter()
        res = simulate(pol, trace, progress=progress)
        rows.append((res, time.perf_counter() - t0))
        if out:
            path = Path(out) / policy_csv_name(name, seed)
            res.write_csv(path)
    console.print(summary_table(rows, f"N={counted(sc.n_mus, 'MU')}, M={counted(sc.n_bss, 'BS')}, {counted(slots, 'slot')}, "
                                      f"seed {seed}"))
    if out and trace.mobility_report is not None:
        from ..io import atomic_write_text
        atomic_write_text(Path(out) / "mobility_fixes.csv", trace.mobility_report.csv_text())
        atomic_write_text(Path(out) / "mobility_vehicles.csv", "mu,vehicle\n" + "".join(
            f"{i},{v}\n" for i, v in enumerate(trace.mobility_report.mu_vehicles)))
    if out:
        console.print(f"per-slot tables written to {os.path.join(Path(out), '')}" + (" (and the mobility cleaning report)"
                                                             if trace.mobility_report is not None else ""))


@click.command("snapshot")
@scenario_options
@click.option("--slot", type=click.IntRange(min=0), default=0, show_default=True,
              help="Slot of the trace, below --slots (its gains and DT constants depend on the trace's length --slots).")
@click.option("-o", "--out", type=OutPath(dir_okay=False), required=True, help="Snapshot JSON to write.")
def snapshot_cmd(scenario_spec: str, n_mus: int | None, n_bss: int | None, slots: int, seed: int,
                 slot: int, out: str, mobility: str | None = None) -> None:
    """Write the snapshot of one slot of a generated trace (initial placement, migration allowed).

    The slot is one of the --slots of the trace that `simulate` replays with the same options; a
    --slot at or past --slots is refused. The same --seed and --slot with another --slots give
    another snapshot: the fading's imaginary parts and the DTs' cycles per bit and sizes are
    drawn after the whole trace's blocks (docs/model.md, section 2.1); positions, requests, data
    sizes and association do not change. Keep --slots fixed to compare snapshots.
    """
    if slot >= slots:   # a longer trace would silently give another trace's values (docstring)
        raise click.UsageError(f"--slot: {slot} is past the trace's {counted(slots, 'slot')} (0 to {slots - 1}); give "
                               f"--slots {slot + 1} or more, the --slots of the run it should match")
    sc = load_scenario(scenario_spec, n_mus, n_bss)
    trace = make_trace(sc, seed, slots, mobility)
    snap = trace.snapshot(slot)
    snap.save(out)
    console.print(f"wrote {out}: {snap!r}")


@click.command("demo")
@click.option("--slots", type=click.IntRange(min=1), default=60, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@progress_option
def demo(slots: int, seed: int, progress: bool = True) -> None:
    """The main job on the default scenario: policies on one replayed trace, and their optimality gaps."""
    from ..policies import make_policy, policy_names
    from ..simulation import simulate
    from ..trace import generate_trace

    sc = Scenario.paper()
    console.rule("[bold]wdtnopt demo")
    console.print(f"Scenario 'paper': {sc.n_mus} MUs, {sc.n_bss} BSs, slot {sc.slot_s} s, frame {sc.frame_slots} slots, "
                  f"deadline {sc.deadline_s} s, target failure ratio eps = {sc.eps}")
    t0 = time.perf_counter()
    trace = generate_trace(sc, seed=seed, slots=slots)
    console.print(f"1. Generated a {slots}-slot trace (seed {seed}) in {time.perf_counter() - t0:.2f} s: "
                  f"{int(trace.request.sum())} sync requests; every policy below replays it.")

    console.print("2. One snapshot (slot 0) solved to a certified optimum, against the heuristics on it "
                  "(objective = energy + failure and migration penalties, in mJ):")
    _demo_snapshot(trace)

    console.print("3. Policies on the whole trace:")
    rows = []
    learned = _demo_pretrained()
    for name in ("static", "follow", "oracle", "lyapunov") + tuple(learned):
        t0 = time.perf_counter()
        res = simulate(make_policy(name), trace, progress=progress)
        rows.append((res, time.perf_counter() - t0))
    console.print(summary_table(rows, f"{counted(slots, 'slot')}, seed {seed}"))
    for name, rec in learned.items():
        console.print(f"   [dim]{name}: trained with `{rec['command']}` ({rec['env_steps']} env steps, seed {rec['seed']}, "
                      f"{rec['cpu_time_s']:.0f} CPU-s); docs/agents.md[/dim]")
    _demo_gap(trace, [r for r, _ in rows], progress)
    console.print(f"[dim]registered policies: {', '.join(policy_names())}[/dim]")


def _demo_pretrained() -> dict[str, dict[str, Any]]:
    """The shipped Beta-HAPPO agent's policy name and training record, if torch is installed."""
    try:
        from ..agents.pretrained import pretrained_names, pretrained_record
    except ImportError:   # torch is an optional dependency of the learned agents
        return {}
    return {f"pretrained:{n}": pretrained_record(n) for n in pretrained_names() if n == "beta-happo"}


def _demo_snapshot(trace: Any) -> None:
    from ..cost import evaluate
    from ..policies.heuristics import FollowPolicy, equal_share_allocation
    from ..solvers import solve

    snap = trace.snapshot(0)
    table = Table()
    for col in ("decision", "objective (mJ)", "energy (mJ)", "failed", "migrated", "certified bound (mJ)", "time (s)"):
        table.add_column(col, justify="left" if col == "decision" else "right")
    for label, dec in (("static", equal_share_allocation(snap)),
                       ("follow", equal_share_allocation(snap, FollowPolicy().place(snap, None)))):
        ev = evaluate(snap, dec)
        table.add_row(label, f"{ev.objective * 1e3:.4f}", f"{ev.energy_total * 1e3:.4f}", str(ev.n_failed),
                      str(int(ev.migrated.sum())), "", "")
    sol = solve(snap, method="exact")
    ev = evaluate(snap, sol)
    table.add_row(f"exact ({sol.status})", f"{sol.objective * 1e3:.4f}", f"{ev.energy_total * 1e3:.4f}", str(ev.n_failed),
                  str(int(ev.migrated.sum())), f"{sol.bound * 1e3:.4f}", f"{sol.solve_time_s:.3f}")
    console.print(table)


def _demo_gap(trace: Any, results: list[Any], progress: bool = True) -> None:
    from ..bounds import gap, hindsight_bound

    console.print("4. Optimality gaps against the hindsight lower bound (same trace; each policy's bound is taken "
                  "at its own per-MU failure ratios, so failing more cannot look cheap):")
    t0 = time.perf_counter()
    hb = hindsight_bound(trace, iters=5, workers=None, progress=progress)
    report = gap(results, trace, bound=hb, iters=3)
    console.print(report.table())
    how = ("column generation" if hb.method == "columns" else "slot solves each")
    console.print(f"   [dim]bound: {counted(len(hb.points), 'dual evaluation')} over "
                  f"{counted(int(trace.request.any(axis=1).sum()), 'slot')} "
                  f"({how}), {time.perf_counter() - t0:.1f} s; at a policy's own failure ratios, no policy on this trace "
                  f"that fails no MU more often can spend less[/dim]")
