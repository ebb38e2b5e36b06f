"""``wdtnopt train``: train a learned baseline; CSV log, learning-curve PNG, resumable checkpoints."""
from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import click

from ..errors import MobilityError, WdtnoptError
from ..io import atomic_write_text
from ..processes.mobility import SHORT_RECORD_ADVICE
from ..progress import progress_bar
from .core import OutPath, load_mobility_source, load_scenario, mobility_option

LOG_COLUMNS = ("iteration", "env_steps", "wall_s", "reward", "energy_per_mu_slot", "failure_ratio", "policy_loss",
               "value_loss", "approx_kl", "clipfrac", "explained_variance", "entropy_controller", "q_mean",
               "factor_std", "explained_variance_mu", "explained_variance_bs", "sps")
ALGOS = ("beta-happo", "gaussian-happo", "beta-mappo", "maddpg")


def _overrides(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()   # "n_envs = 2" was the unknown option "n_envs "
        if not sep or not key:
            raise WdtnoptError(f"--set: expected KEY=VALUE, got {item!r}")
        if key in out:   # the last one silently won
            raise WdtnoptError(f"--set {key}=...: given twice; give each config field once")
        for conv in (int, float):
            try:
                out[key] = conv(raw)
                break
            except ValueError:
                continue
        else:
            out[key] = {"true": True, "false": False, "none": None}.get(raw.lower(), raw)
    return out


def read_log(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _resumed_rows(path: Path, iteration: int) -> list[dict[str, str]]:
    """The rows of the run's log up to the checkpoint's ``iteration``; a row whose iteration, env steps,
    wall time or plotted metric is not a number (an edited or damaged log: it ended in a ValueError
    traceback) is an error naming the file and line."""
    rows = read_log(path)
    for line, r in enumerate(rows, start=2):
        for key, conv in (("iteration", int), ("env_steps", float), ("wall_s", float), ("reward", float),
                          ("energy_per_mu_slot", float), ("failure_ratio", float)):   # what the curve plots
            try:
                conv(r.get(key) or "")
            except ValueError:
                raise WdtnoptError(f"--resume: {path}, line {line}: {key} {r.get(key)!r} is not a number; "
                                   "restore the log or delete it (the checkpoint resumes without it)") from None
    return [r for r in rows if int(r["iteration"]) <= iteration]


def write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOG_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in LOG_COLUMNS})
    atomic_write_text(path, buf.getvalue())


def plot_curve(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Learning curve: team reward per slot and MU energy (mJ per MU per slot) against env steps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [float(r["env_steps"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, label, scale in ((axes[0], "reward", "team reward per slot (units of E_ref)", 1.0),
                                  (axes[1], "energy_per_mu_slot", "energy per MU per slot (mJ)", 1e3),
                                  (axes[2], "failure_ratio", "failure ratio (failed / requested)", 1.0)):
        ax.plot(steps, [float(r[key]) * scale for r in rows])
        ax.set_xlabel("environment steps (slots x environments)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    from ..io import atomic_write
    atomic_write(path, lambda fh: fh.write(buf.getvalue()), binary=True)


def _check_resumed(trainer: Any, algo: str, scenario_spec: str, seed: int) -> None:
    """Refuse an --algo, --seed or --scenario given with --resume that is not the run's own (the
    checkpoint decides them; a different one was silently ignored). Repeating the run's own
    values, as when --resume is added to the command that started it, is accepted."""
    from click.core import ParameterSource

    ctx = click.get_current_context()

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)

    def refuse(option: str, value: Any, own: str) -> None:
        raise WdtnoptError(f"{option} {value}: the run in --out {own}; --resume continues it as it was "
                           f"(drop {option}, or start a new run in another --out)")

    if given("algo") and algo != trainer.algo:
        refuse("--algo", algo, f"is {trainer.algo}")
    if given("seed") and seed != trainer.seed:
        refuse("--seed", seed, f"has seed {trainer.seed}")
    if given("scenario_spec"):
        sc = trainer.scenario
        try:
            same = load_scenario(scenario_spec, sc.n_mus, sc.n_bss) == sc
        except WdtnoptError:
            same = False
        if not same:
            refuse("--scenario", scenario_spec, "was trained on another scenario")

def networks_min_parameters(scenario: Any, config: Any) -> int:
    """A lower bound on the trainable parameters of any algorithm's networks on ``scenario``: its
    centralized critic over the global state (``critic_hidden`` wide, two hidden layers) and the
    controller's actor (``hidden`` wide, N x M categorical outputs), which every algorithm builds
    (docs/agents.md); the MU and BS actors and MADDPG's joint-action input only add to it."""
    from ..agents.core import EnvSpec

    d = EnvSpec.from_scenario(scenario).dims
    n, m, h, ch = scenario.n_mus, scenario.n_bss, int(config.hidden), int(config.critic_hidden)
    critic = d["state"] * ch + ch + ch * ch + ch + ch + 1
    controller = d["controller"] * h + h + h * h + h + h * n * m + n * m
    return critic + controller


def _check_networks_fit(algo: str, scenario: Any, config: Any) -> None:
    """Refuse, before any network is initialised (minutes of orthogonal initialisation at N =
    100,000), networks whose parameters, gradients and two Adam moments (4 float32 copies) need
    more than the memory available."""
    from .. import trace as trace_mod

    params = networks_min_parameters(scenario, config)
    need, have = 16 * params, trace_mod.available_memory_bytes()
    if have is None or need <= have:
        return
    raise WdtnoptError(f"n_mus, n_bss: the {algo} networks at n_mus={scenario.n_mus:,}, n_bss={scenario.n_bss:,} "
                       f"(hidden={config.hidden}, critic_hidden={config.critic_hidden}) have at least {params:,} "
                       f"parameters, which with their gradients and Adam moments need at least "
                       f"{trace_mod._gib(need)} of memory and {trace_mod._gib(have)} is available; use fewer MUs or "
                       "BSs (--n-mus/--n-bss) or smaller networks (--set critic_hidden=K, --set hidden=K)")


@click.command("train")
@click.option("--algo", type=click.Choice(ALGOS), default="beta-happo", show_default=True, help="Learning algorithm.")
@click.option("--scenario", "scenario_spec", default="paper", show_default=True, help="'paper' or a TOML/JSON scenario file.")
@mobility_option
@click.option("--n-mus", type=click.IntRange(min=1), default=None, help="Override the number of MUs.")
@click.option("--n-bss", type=click.IntRange(min=1), default=None, help="Override the number of BSs.")
@click.option("--steps", type=click.IntRange(min=1), default=200_000, show_default=True,
              help="Environment steps to train for in total (slots x environments), rounded up to whole "
                   "iterations of n_envs x rollout_steps steps (1,600 by default; MADDPG 800).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of networks, sampling and traces.")
@click.option("--out", "out_dir", type=OutPath(file_okay=False), required=True, help="Output directory (checkpoint, log, curve).")
@click.option("--resume", is_flag=True, help="Continue the run saved in --out exactly where it stopped.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Override a config field (docs/agents.md); repeatable.")
@click.option("--save-every", type=click.IntRange(min=1), default=10, show_default=True, help="Checkpoint every this many iterations.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_cmd(algo: str, scenario_spec: str, n_mus: int | None, n_bss: int | None, steps: int, seed: int,
              out_dir: str, resume: bool, settings: tuple[str, ...], save_every: int, quiet: bool,
              mobility: str | None = None) -> None:
    """Train a learned baseline on the WDTN environment (docs/agents.md)."""
    from ..agents.checkpoint import CHECKPOINT_FILE
    from ..agents.trainer import Trainer, algorithm_class, make_config

    overrides = _overrides(settings)   # a bad or repeated --set before any folder is made
    out = Path(out_dir)
    log_path, png_path = out / "log.csv", out / "curve.png"
    if resume:
        if settings or n_mus is not None or n_bss is not None or mobility is not None:
            raise WdtnoptError("--resume: the run's scenario and config come from its checkpoint; "
                               "drop --set/--n-mus/--n-bss/--mobility")
        trainer = Trainer.load(out)
        _check_resumed(trainer, algo, scenario_spec, seed)
        rows: list[dict[str, Any]] = _resumed_rows(log_path, trainer.iteration)
    else:
        if (out / CHECKPOINT_FILE).exists():
            raise WdtnoptError(f"--out: {out} already holds a run; pass --resume to continue it or choose another directory")
        source = load_mobility_source(mobility)   # a bad file is reported before any training starts
        scenario = load_scenario(scenario_spec, n_mus, n_bss)
        _check_networks_fit(algo, scenario, make_config(algorithm_class(algo), overrides))
        # a bad scenario or config value too, before the folder is made (it was left behind empty)
        try:
            trainer = Trainer(algo, scenario, seed, overrides,
                              None if source is None else str(Path(source.path).resolve()))
        except MobilityError as exc:   # train's slots are episode_slots: name that knob, not "fewer slots"
            raise MobilityError(str(exc).replace(SHORT_RECORD_ADVICE, "a smaller --set episode_slots=K, another "
                                                 "start_s or a longer record")) from None
        try:   # so is an --out folder that cannot be made (else the run is lost at its first write)
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WdtnoptError(f"--out: cannot create the folder {out}: {exc.strerror or exc}") from None
        rows = []
    wall0 = float(rows[-1]["wall_s"]) if rows else 0.0
    t0 = time.perf_counter()
    bar = None
    if not quiet:   # on a terminal, or with WDTNOPT_PROGRESS=1; silent in logs and pipes, as every command's
        bar = progress_bar(total=steps, initial=min(trainer.env_steps, steps), unit="step",
                           desc=f"train {trainer.algo}", leave=True)
    try:
        while trainer.env_steps < steps:
            m = trainer.train_iteration()
            m["wall_s"] = wall0 + time.perf_counter() - t0
            rows.append(m)
            if bar is not None:
                bar.update(min(trainer.steps_per_iteration, steps - bar.n))
                bar.set_postfix(reward=f"{m['reward']:.3f}", energy_mJ=f"{m['energy_per_mu_slot'] * 1e3:.3f}",
                                fail=f"{m['failure_ratio']:.3f}", sps=f"{m['sps']:.0f}")
            if trainer.iteration % save_every == 0:
                write_log(log_path, rows)   # log first: resume drops rows past the checkpoint
                trainer.save(out)
    finally:
        if bar is not None:
            bar.close()
    write_log(log_path, rows)
    trainer.save(out)
    if rows:
        plot_curve(rows, png_path, f"{trainer.algo}, N={trainer.scenario.n_mus}, seed {trainer.seed}")
    last = rows[-1] if rows else {}
    click.echo(f"{trainer.algo}: {trainer.env_steps} env steps, reward {float(last.get('reward', 'nan')):.4f}, "
               f"energy {float(last.get('energy_per_mu_slot', 'nan')) * 1e3:.4f} mJ/MU/slot, "
               f"failure ratio {float(last.get('failure_ratio', 'nan')):.4f}; wrote {out}")
