"""The ``wdtnopt`` command line.

Each subcommand lives in its own module and is imported only when invoked, so ``wdtnopt --help``
stays fast. Any user error (a :class:`~wdtnopt.errors.WdtnoptError`, a bad option, a missing file)
ends in one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

import click

# subcommand -> (module under wdtnopt.cli, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("core", "demo", "Run the main job end to end on the default scenario."),
    "simulate": ("core", "simulate_cmd", "Simulate a policy on a generated trace; print a summary, write CSV."),
    "snapshot": ("core", "snapshot_cmd", "Write the snapshot of one slot of a trace as JSON."),
    "solve": ("solve", "solve_cmd", "Solve a snapshot JSON file; print a table, write the solution."),
    "bound": ("longterm", "bound_cmd", "Hindsight lower bound of a trace (any causal policy's energy is above it)."),
    "gap": ("longterm", "gap_cmd", "Optimality gaps of policies against the hindsight bound."),
    "bench": ("bench", "bench_cmd", "Run a benchmark suite (paper, solvers, scaling, mobility, resilience, sixg); resumable, local or on Dask."),
    "train": ("train", "train_cmd", "Train a learned baseline (HAPPO, MAPPO, MADDPG); log, curve, checkpoint."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._available(name)]

    def _available(self, name: str) -> bool:
        module = COMMANDS[name][0]
        try:
            import importlib.util
            return importlib.util.find_spec(f"wdtnopt.cli.{module}") is not None
        except ImportError:
            return False

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(import_module(f"wdtnopt.cli.{module}"), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wdtnopt")
def cli() -> None:
    """wdtnopt: certified optimization and learned baselines for wireless digital twin networks."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI, turning user errors (and paths that cannot be read or written) into one
    line and exit code 2."""
    import warnings

    from ..errors import WdtnoptError

    # a warning is one 'warning: ...' line as well, not Python's file:line header and source line
    plain_format = warnings.formatwarning
    warnings.formatwarning = _warning_line
    try:
        return cli.main(args=argv, prog_name="wdtnopt", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # click's own rendering is four lines (usage, hint, blank, message): keep the one line
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"error: {_one_line(exc.format_message())}{where}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {_one_line(exc.format_message())}", err=True)
        sys.exit(2)
    except WdtnoptError as exc:
        click.echo(f"error: {_one_line(str(exc))}", err=True)
        sys.exit(2)
    except OSError as exc:
        if exc.filename is None:   # not about a file the user named: a real failure, keep its traceback
            raise
        # an output (or input) path that cannot be written or read, e.g. under a file or a read-only folder
        names = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        click.echo(f"error: {names}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except MemoryError as exc:
        # what the estimates checked before allocating did not foresee (docs/model.md, section 2.2):
        # still one line, never a traceback
        what = str(exc).strip().splitlines()[0] if str(exc).strip() else "an allocation failed"
        click.echo(f"error: out of memory ({what}); use fewer slots, MUs or BSs", err=True)
        sys.exit(2)
    finally:
        warnings.formatwarning = plain_format


def _warning_line(message: Any, category: type, filename: str, lineno: int, line: str | None = None) -> str:
    """A warning as the command line shows it: ``warning: MESSAGE`` on one line."""
    return f"warning: {_one_line(str(message))}\n"


def _one_line(message: str) -> str:
    """``message`` on one line (click lists a missing choice's values one per line)."""
    return " ".join(message.split())


if __name__ == "__main__":  # pragma: no cover
    main()
