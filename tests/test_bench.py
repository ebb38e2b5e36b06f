"""Benchmark suites: smoke presets render, resume loses nothing, Dask = local processes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wdtnopt.benchmarks.suites import load_config, run_suite, suite_module, task_key
from wdtnopt.errors import WdtnoptError

# a paper sweep smaller than `smoke`, with one task of every kind (train, bound, policy)
TINY = """
base = "smoke"
seeds = [0, 1]
n_mus = 5
n_grid = [5]
eta_grid = [1.0]
algos = ["beta-happo"]
sweep_algos = ["beta-happo"]
policies = ["static", "oracle"]
iterations = 1
bound_iters = 1
"""
TABLES = ("runs.csv", "curves.csv", "bounds.csv")
CLI = [sys.executable, "-c", "import sys; from wdtnopt.cli import main; main(sys.argv[1:])"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def tiny_local(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local")
    run, files = run_suite("paper", tiny, out, workers=2, progress=False)
    assert run.complete and files
    return out


@pytest.mark.parametrize("suite, expected", [
    ("paper", ["runs.csv", "curves.csv", "bounds.csv", "fig_a_training.png", "fig_b_eta.png", "fig_c_energy_vs_n.png",
               "fig_d_failure_vs_n.png", "report.md"]),
    ("solvers", ["solvers.csv", "fig_solvers_time.png", "report.md"]),
    ("scaling", ["scaling.csv", "fig_scaling.png", "report.md"]),
    ("resilience", ["resilience.csv", "fig_mtbf.png", "fig_mttr.png", "fig_gap.png", "report.md"]),
])
def test_smoke_preset_renders(suite, expected, tmp_path):
    run, files = run_suite(suite, "smoke", tmp_path, workers=2, progress=False)
    assert run.complete and not run.reused
    for name in expected:
        assert (tmp_path / name).stat().st_size > 0, name
        assert tmp_path / name in files
    assert len(list((tmp_path / "tasks").glob("*.json"))) == len(run.executed)
    report = (tmp_path / "report.md").read_text()
    assert "- Command" in report and "Machine:" in report
    if suite == "paper":
        assert "## Trends of the case study" in report
        assert "Sanity: runs with energy below their own bound: 0" in report
        assert any((tmp_path / "agents").glob("*/checkpoint.pt"))
    if suite == "resilience":
        assert "bound is below every policy's energy at its own failure ratios in every gap run: yes" in report
        assert "## Predictive vs follow" in report


def test_resume_executes_only_missing_tasks(tiny, tiny_local, tmp_path):
    total = len(suite_module("paper").tasks(load_config("paper", tiny)))
    run, files = run_suite("paper", tiny, tmp_path, workers=2, limit=3, progress=False)  # "killed" after 3 tasks
    assert len(run.executed) == 3 and len(run.missing) == total - 3 and not files
    # a torn file (a crash while writing without the atomic rename) counts as missing
    torn = tmp_path / "tasks" / f"{run.executed[0]}.json"
    torn.write_text(torn.read_text()[:40])
    run2, files2 = run_suite("paper", tiny, tmp_path, workers=2, progress=False)
    assert sorted(run2.reused) == sorted(run.executed[1:])
    assert len(run2.executed) == total - 2 and run2.complete and files2
    for name in TABLES:
        assert (tmp_path / name).read_text() == (tiny_local / name).read_text(), name
    run3, _ = run_suite("paper", tiny, tmp_path, workers=1, progress=False)
    assert not run3.executed and len(run3.reused) == total


def test_killed_process_keeps_finished_tasks(tiny, tiny_local, tmp_path):
    """SIGKILL a real run once its first task file appears; the rerun reuses every finished file."""
    import signal
    import time

    proc = subprocess.Popen(CLI + ["bench", "paper", "--preset", str(tiny),
                             "--out", str(tmp_path), "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    tasks = tmp_path / "tasks"
    while time.time() < deadline and not (tasks.is_dir() and any(tasks.glob("*.json"))) and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = sorted(p.stem for p in tasks.glob("*.json"))
    assert finished, "no task finished before the kill"
    run, files = run_suite("paper", tiny, tmp_path, workers=2, progress=False)
    assert sorted(run.reused) == finished and run.complete and files
    for name in TABLES:
        assert (tmp_path / name).read_text() == (tiny_local / name).read_text(), name


def test_dask_cluster_gives_identical_results(tiny, tiny_local, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        run, files = run_suite("paper", tiny, tmp_path, scheduler=client, progress=False)
    assert run.complete and files and not run.reused
    for name in TABLES:
        assert (tmp_path / name).read_text() == (tiny_local / name).read_text(), name
    local = {p.name: json.loads(p.read_text())["result"] for p in (tiny_local / "tasks").glob("*.json")}
    dask = {p.name: json.loads(p.read_text())["result"] for p in (tmp_path / "tasks").glob("*.json")}
    assert local == dask


def test_task_keys_and_presets(tiny, tmp_path):
    assert task_key("m:f", {"a": 1, "b": [1, 2]}) == task_key("m:f", {"b": [1, 2], "a": 1})
    assert task_key("m:f", {"seed": 0}) != task_key("m:f", {"seed": 1})
    for suite in ("paper", "solvers", "scaling"):
        for preset in ("smoke", "default", "full"):
            assert suite_module(suite).tasks(load_config(suite, preset))
    assert len(suite_module("paper").tasks(load_config("paper", "default"))) > 100
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "smoke"\nseedz = [1]\n')
    with pytest.raises(WdtnoptError, match="seedz"):
        load_config("paper", bad)
    with pytest.raises(WdtnoptError, match="preset"):
        load_config("paper", "huge")


def test_cli_bench(tiny, tiny_local, tmp_path):
    out = tmp_path / "o"
    r = subprocess.run(CLI + ["bench", "paper", "--preset", str(tiny), "--out", str(out),
                        "--workers", "1", "--limit", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())   # the console wraps long lines (a long tmp path moves the break)
    assert "2 executed" in text and "not rendered yet" in text
    r = subprocess.run(CLI + ["bench", "paper", "--preset", "nope", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "preset" in r.stderr and "Traceback" not in r.stderr


def test_mobility_suite_replays_the_sumo_fixture(tmp_path):
    """Suite `mobility` without SUMO installed: the committed FCD fixture stands in for the grid."""
    fixture = Path(__file__).parent / "data" / "sumo_grid_fcd.xml.gz"
    cfg = tmp_path / "mob.toml"
    cfg.write_text(f'base = "smoke"\nfcd = "{fixture}"\nslots = 12\nn_mus = 4\n')
    for preset in ("smoke", "default", "full"):
        assert len(suite_module("mobility").tasks(load_config("mobility", preset))) == 2 * len(
            load_config("mobility", preset)["seeds"])
    run, files = run_suite("mobility", cfg, tmp_path / "out", workers=1, progress=False)
    assert run.complete and len(files) == 3
    results = {json.loads(p.read_text())["config"]["mobility"]: json.loads(p.read_text())["result"]
               for p in (tmp_path / "out" / "tasks").glob("*.json")}
    assert set(results) == {"gauss-markov", "sumo-grid"}
    for res in results.values():
        for row in res["policies"].values():
            # a policy's energy is never below the hindsight bound at its own failure ratios
            assert row["energy_per_mu_slot"] >= row["bound_per_mu_slot"] * (1 - 1e-9) and row["gap"] >= -1e-9
    assert results["gauss-markov"]["cleaning"] is None
    assert "sumo_grid_fcd.xml.gz: 15130 records" in results["sumo-grid"]["cleaning"]["summary"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| sumo-grid | follow |" in report and "Cleaning of the SUMO traces" in report


def test_paper_suite_replays_a_mobility_file(tmp_path):
    """`mobility = FILE` in a paper preset: every task's trace takes its positions from the file,
    and Gauss-Markov presets keep their task keys (no mobility key in their configs)."""
    fixture = Path(__file__).parent / "data" / "sumo_grid_fcd.xml.gz"
    cfg = tmp_path / "paper_mob.toml"
    cfg.write_text(TINY.replace("seeds = [0, 1]", "seeds = [0]").replace('policies = ["static", "oracle"]',
                                                                         'policies = ["follow"]')
                   + f'mobility = "{fixture}"\n')
    tasks = suite_module("paper").tasks(load_config("paper", cfg))
    assert tasks and all(t.config["mobility"] == str(fixture.resolve()) for t in tasks)
    assert all("mobility" not in t.config for t in suite_module("paper").tasks(load_config("paper", "smoke")))
    run, files = run_suite("paper", cfg, tmp_path / "out", workers=1, progress=False)
    assert run.complete and files
    from wdtnopt import Scenario, generate_trace, simulate
    follow = next(json.loads(p.read_text()) for p in (tmp_path / "out" / "tasks").glob("*.json")
                  if json.loads(p.read_text())["config"].get("policy") == "follow")
    res = simulate("follow", generate_trace(Scenario.paper(n_mus=5), seed=0, slots=10, mobility=fixture))
    assert follow["result"]["energy_per_mu_slot"] == res.energy_per_mu_slot
    assert "mobility: replayed from `sumo_grid_fcd.xml.gz`" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize("suite,line,needle", [
    ("sixg", 'seeds = "a"', "seeds: expected a list"),
    ("sixg", 'seeds = [1.5]', "seeds item: expected an integer"),
    ("resilience", 'mtbf_grid = [-1.0]', "server_mtbf_s"),     # raised in a worker process
    ("sixg", 'carrier_grid = [1e12]', "thz_carrier_hz"),       # raised in a worker process
])
def test_bad_preset_values_are_one_line_exit_2(suite, line, needle, tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text(f'base = "smoke"\n{line}\n')
    proc = subprocess.run(CLI + ["bench", suite, "--preset", str(cfg), "--out", str(tmp_path / "out"), "--workers", "2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_validation_errors_survive_pickling():
    import pickle

    from wdtnopt.errors import DecisionError, ScenarioError, SnapshotError, ValidationError

    for err in (ScenarioError([("n_mus", "bad")]), SnapshotError([("gain", "x"), ("cpu_hz", "y")]),
                DecisionError([("power", "z")]), ValidationError("thing", [("a", "b")])):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and back.problems == err.problems


@pytest.mark.parametrize("suite", ["solvers", "scaling"])
def test_loaded_smoke_preset_runs_scip_beside_exact_and_fast(suite, tmp_path):
    """The loaded presets solve wdtnopt.testing.loaded_snapshot instances with exact, fast and SCIP in
    one run (the smoke variant at toy sizes); the default presets' tasks keep their keys."""
    from wdtnopt.solvers import methods

    cfg = load_config(suite, "loaded_smoke")
    assert load_config(suite, "loaded")["snapshots"] in ("loaded", ["loaded"])
    tasks = suite_module(suite).tasks(cfg)
    assert all(t.config.get("snapshots") == "loaded" for t in tasks)
    assert all("snapshots" not in t.config for t in suite_module(suite).tasks(load_config(suite, "default")))
    run, files = run_suite(suite, "loaded_smoke", tmp_path, workers=1, progress=False)
    assert run.complete
    report = (tmp_path / "report.md").read_text()
    if suite == "solvers":
        rows = (tmp_path / "solvers.csv").read_text().splitlines()
        got = {line.split(",")[1] for line in rows[1:]}
        assert {"exact", "fast"} <= got and ("pyomo" in got or "pyomo" not in methods())
        assert all(line.startswith("loaded,") for line in rows[1:])
        assert "| loaded | exact oracle" in report
    else:
        assert "SCIP (s)" in report and "loaded_snapshot(N, 2, 0)" in report


def test_paper_bound_at_own_ratios_is_tightened_as_gap_does(tiny, tiny_local):
    """Each run's bound in runs.csv is the bound tightened at its own failure ratios: at least what
    `wdtnopt.gap` (same trace, same dual budget) gives that run alone, and still below its energy.
    Before, the rows read the bound task's points only (climbed for eps): the myopic oracle's gap
    at N = 30 read 15% instead of 5%."""
    import csv

    from wdtnopt import Scenario, generate_trace, gap, simulate

    cfg = load_config("paper", tiny)
    rows = [r for r in csv.DictReader((tiny_local / "runs.csv").open()) if r["kind"] == "policy"]
    cache = json.loads((tiny_local / "own_bounds.json").read_text())
    assert len(cache) >= len(rows) > 0
    for r in rows:
        n, seed, slots = int(r["n_mus"]), int(r["seed"]), int(r["slots"])
        trace = generate_trace(Scenario.paper(n_mus=n, eta=float(r["eta"])), seed=seed, slots=slots)
        res = simulate(r["method"], trace)
        assert float(r["energy_per_mu_slot_j"]) == pytest.approx(res.energy_per_mu_slot, rel=1e-12)
        lb_gap = gap([res], trace, iters=int(cfg["bound_iters"]), method=cfg["bound_method"], workers=1).rows[0]
        assert float(r["bound_own_j"]) >= lb_gap.bound_per_mu_slot * (1 - 1e-9)
        assert float(r["bound_own_j"]) <= res.energy_per_mu_slot * (1 + 1e-9)
