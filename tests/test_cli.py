import json
import subprocess
import sys

import pytest

from cli_runner import run_cli as run
from wdtnopt import Snapshot




def test_simulate_writes_csv(tmp_path, capsys):
    code, out, err = run(["simulate", "--policy", "static", "--policy", "follow", "--n-mus", "8", "--slots", "12",
                          "--no-progress", "-o", str(tmp_path)], capsys)
    assert code == 0, err
    assert "follow" in out and "static" in out
    lines = (tmp_path / "follow_seed0.csv").read_text().splitlines()
    assert lines[0].startswith("slot,frame_start,requests") and len(lines) == 13


def test_snapshot_command(tmp_path, capsys):
    path = tmp_path / "s.json"
    code, _, err = run(["snapshot", "--n-mus", "5", "--slot", "2", "-o", str(path)], capsys)
    assert code == 0, err
    assert Snapshot.load(path).n_mus == 5


@pytest.mark.parametrize("args,needle", [
    (["simulate", "--scenario", "missing.toml"], "--scenario"),
    (["simulate", "--policy", "nope", "--slots", "2"], "unknown policy"),
    (["simulate", "--slots", "0"], "--slots"),
    (["simulate", "--n-mus", "abc"], "--n-mus"),
    (["frobnicate"], "No such command"),
    (["simulate", "--polcy", "static"], "Did you mean '--policy'"),
    (["bound", "--iters", "-3"], "--iters"),
    (["bench", "nosuch"], "nosuch"),
    (["train", "--algo", "nosuch"], "--algo"),
])
def test_bad_input_is_one_line_exit_2(args, needle, capsys):
    code, out, err = run(args, capsys)
    assert code == 2
    assert needle in err and "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("args", [
    ["simulate", "--slots", "2", "--n-mus", "3", "--no-progress", "-o", "{blocked}/out"],
    ["snapshot", "--n-mus", "3", "--slots", "2", "-o", "{blocked}/s.json"],
    ["bound", "--n-mus", "3", "--slots", "2", "--dual", "columns", "-o", "{blocked}/b.json"],
    ["train", "--algo", "maddpg", "--steps", "1", "--n-mus", "3", "--n-bss", "2", "--out", "{blocked}/run"],
], ids=["simulate", "snapshot", "bound", "train"])
def test_unwritable_output_is_one_line_exit_2(tmp_path, capsys, args):
    """An output path that cannot be written (here: under a regular file) ends in one line naming
    the path, exit 2, not a traceback."""
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    code, out, err = run([a.format(blocked=blocked) for a in args], capsys)
    assert code == 2, err
    assert "Traceback" not in err + out and str(blocked) in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self"), reason="needs Linux /proc (no files can be made there)")
def test_unwritable_folder_names_the_file_asked_for(capsys):
    """A folder where no file can be made: the one line names the file asked for, not the temporary
    file the atomic write tried first."""
    code, out, err = run(["snapshot", "--n-mus", "3", "--slots", "2", "-o", "/proc/wdtnopt-test-s.json"], capsys)
    assert code == 2 and "Traceback" not in err + out
    assert err.startswith("error: /proc/wdtnopt-test-s.json: "), err


def test_bad_scenario_file(tmp_path, capsys):
    bad = tmp_path / "s.toml"
    bad.write_text("n_mus = -4\nwhatever = 1\n")
    code, _, err = run(["simulate", "--scenario", str(bad)], capsys)
    assert code == 2 and "whatever" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_import_is_light():
    code = ("import sys, wdtnopt; wdtnopt.Scenario; wdtnopt.generate_trace; wdtnopt.evaluate; wdtnopt.simulate;"
            "heavy = [m for m in ('torch', 'dask', 'pyomo', 'cvxpy', 'highspy', 'pyscipopt', 'pandas') if m in sys.modules];"
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_demo_runs_end_to_end(capsys, monkeypatch):
    monkeypatch.setenv("WDTNOPT_PROGRESS", "1")   # bars forced on although stderr is captured
    code, out, err = run(["demo", "--slots", "4"], capsys)
    assert code == 0, err
    assert "%|" in err   # the policies' and the bound's progress bars
    flat = " ".join(out.split())   # the console wraps long lines
    for needle in ("exact", "(optimal)", "lyapunov", "hindsight bound", "gap", "pretrained:beta-happo",
                   "wdtnopt train --algo beta-happo --steps 200000 --seed 0"):
        assert needle in flat, needle


def test_demo_no_progress_silences_the_bars(capsys, monkeypatch):
    monkeypatch.setenv("WDTNOPT_PROGRESS", "1")   # --no-progress wins over the forced bars
    code, out, err = run(["demo", "--slots", "2", "--no-progress"], capsys)
    assert code == 0, err
    assert "%|" not in err and "hindsight bound" in " ".join(out.split())


def test_solve_help_lists_every_method(capsys):
    from wdtnopt.solvers import methods

    code, out, _ = run(["solve", "--help"], capsys)
    assert code == 0
    assert all(f"{m} (" in " ".join(out.split()) for m in methods()), out


def test_threads_help_and_cap_warning_are_the_options_own(tmp_path, capsys):
    """``--threads``'s help and its one-line warning come from solvers/options.py (THREADS_HELP,
    capped_threads), the text and rule the option set uses, not a second copy in the CLI."""
    import os

    from wdtnopt import Scenario, generate_trace
    from wdtnopt.solvers.options import THREADS_HELP, max_threads

    code, out, _ = run(["solve", "--help"], capsys)
    assert code == 0 and " ".join(THREADS_HELP.split()) in " ".join(out.split())
    path = tmp_path / "snap.json"
    generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=1).snapshot(0).save(path)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    assert max_threads() == cpus
    code, _, err = run(["solve", str(path), "--threads", str(cpus + 7)], capsys)
    assert code == 0
    assert err.strip().splitlines() == [f"warning: --threads {cpus + 7} is more than the {cpus} CPUs this process "
                                        f"may use; using --threads {cpus}"]
