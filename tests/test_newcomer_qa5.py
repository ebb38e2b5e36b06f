"""A newcomer's fifth pass: extreme but legal inputs, options that must not be ignored."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt import Scenario, generate_trace


def _snapshot_dict(n_mus=6, n_bss=3, seed=3):
    return generate_trace(Scenario.paper(n_mus=n_mus, n_bss=n_bss), seed=seed, slots=2).snapshot(0).to_dict()


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_a_huge_server_cpu_is_solved_like_zero_compute(method):
    # cpu_hz = 1e300 is finite and positive, so legal; a server hosting one busy DT priced it with
    # a Python float's F**2, which raised OverflowError (a traceback through `wdtnopt solve`).
    # Reference: with that much CPU the computation takes no time, so the optimum is the one of the
    # same snapshot whose DTs need no cycles at all.
    from wdtnopt import Snapshot, evaluate, solve

    d = _snapshot_dict()
    d["cpu_hz"] = [1e300] * len(d["cpu_hz"])
    huge = Snapshot.from_dict(d)
    d["cycles_per_bit"] = [0.0] * len(d["cycles_per_bit"])
    zero = Snapshot.from_dict(d)
    sol = solve(huge, method=method)
    ref = solve(zero, method="exact")
    assert sol.status.value == "optimal" and ref.status.value == "optimal"
    assert sol.objective == pytest.approx(ref.objective, rel=1e-6)
    assert evaluate(huge, sol).objective == pytest.approx(sol.objective, rel=1e-9)


@pytest.mark.parametrize("command", ["simulate", "gap"])
def test_lyapunov_options_without_a_lyapunov_policy_are_refused(command, capsys):
    # `wdtnopt simulate --policy static --V 5 --eps 0.3` ran static and said nothing: the options
    # only reach lyapunov and lyapunov-fa (wdtnopt.cli.core.build_policy)
    from cli_runner import run_cli

    args = [command, "--policy", "static", "--policy", "oracle", "--V", "5", "--eps", "0.3",
            "--n-mus", "3", "--n-bss", "2", "--slots", "2"]
    code, out, err = run_cli(args, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--V/--eps: only the lyapunov and lyapunov-fa policies take them" in err
    code, out, err = run_cli(["simulate", "--policy", "static", "--policy", "lyapunov", "--V", "5", "--n-mus", "3",
                              "--n-bss", "2", "--slots", "2", "--no-progress"], capsys)
    assert code == 0 and "lyapunov" in out


def test_a_csv_with_a_byte_order_mark_reads_like_one_without(tmp_path):
    # a spreadsheet's "CSV UTF-8" export starts with a BOM: the header read '\ufefftime_s' and the
    # file was refused as lacking time_s
    from wdtnopt.processes.mobility import read_table

    rows = "".join(f"{0.5 * t},{v},{100.0 + 40 * v + t},{300.0 - t}\n" for t in range(6) for v in range(3))
    plain, bom = tmp_path / "plain.csv", tmp_path / "bom.csv"
    plain.write_text("time_s,id,x_m,y_m\n" + rows, encoding="utf-8")
    bom.write_text("time_s,id,x_m,y_m\n" + rows, encoding="utf-8-sig")
    assert bom.read_bytes()[:3] == b"\xef\xbb\xbf"
    a, b = read_table(plain), read_table(bom)
    for field in ("time_s", "x_m", "y_m"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert a.ids == b.ids and np.array_equal(a.vehicle, b.vehicle)


def test_a_latitude_beyond_the_poles_is_named(tmp_path):
    # lat_deg = 100 (or lon and lat swapped west of 90 W) was projected through cos(lat0) < 0 and
    # the run went on with mirrored positions
    from wdtnopt.errors import MobilityError
    from wdtnopt.processes.mobility import read_table

    rows = [f"{0.5 * t},{v},{11.5 + 0.001 * v},{48.1 + 1e-4 * t}" for t in range(4) for v in range(2)]
    rows[5] = "2.5,1,-122.4,-122.4"
    path = tmp_path / "t.csv"
    path.write_text("time_s,id,lon_deg,lat_deg\n" + "\n".join(rows) + "\n")
    with pytest.raises(MobilityError, match=r"t.csv line 7: lat_deg: expected WGS 84 degrees in \[-90, 90\], got -122.4"):
        read_table(path, area_m=1000.0)
    path.write_text("time_s,id,lon_deg,lat_deg\n" + "\n".join(r for i, r in enumerate(rows) if i != 5) + "\n")
    assert read_table(path, area_m=1000.0).x_m.size == 7


def test_a_scheduler_address_without_a_port_is_one_line(capsys):
    # `wdtnopt bound --scheduler foo` ended in distributed's ValueError traceback ("missing port
    # number in address 'foo'"); an unreachable address was already one line
    pytest.importorskip("distributed")
    from cli_runner import run_cli

    code, out, err = run_cli(["bound", "--n-mus", "3", "--n-bss", "2", "--slots", "2", "--iters", "1",
                              "--dual", "supergradient", "--scheduler", "foo"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "scheduler: expected a Dask scheduler address such as tcp://HOST:8786, got 'foo'" in err


def test_cli_solve_fast_keeps_its_own_default_gap(tmp_path, capsys):
    # `wdtnopt solve --method fast` passed the flag's default 1e-6 as fast's gap (its own default is
    # 1%, README and docs/solvers_fast.md): fast went on into exact's branch and bound for a 1e-6
    # certificate nobody asked for (up to exact_time, 9.5 s, on 100 x 10)
    import json

    from cli_runner import run_cli
    from wdtnopt import solve
    from wdtnopt.testing import loaded_snapshot

    snap = loaded_snapshot(12, 3, 0)
    path = tmp_path / "snap.json"
    snap.save(path)
    ref = solve(snap, method="fast")
    assert 1e-6 < ref.gap <= 0.01 and ref.status.value == "optimal"
    code, out, err = run_cli(["solve", str(path), "--method", "fast", "-o", str(tmp_path / "a.json")], capsys)
    assert code == 0, err
    got = json.loads((tmp_path / "a.json").read_text())
    assert got["gap"] == ref.gap and got["objective"] == ref.objective and got["status"] == "optimal"
    code, out, err = run_cli(["solve", str(path), "--method", "fast", "--gap", "1e-6", "-o", str(tmp_path / "b.json")],
                             capsys)
    assert code == 0 and json.loads((tmp_path / "b.json").read_text())["gap"] <= 1e-6


@pytest.mark.parametrize("algo,key,value", [("beta-happo", "gamma", 2.0), ("beta-happo", "gae_lambda", -0.1),
                                            ("maddpg", "tau", 1.5), ("beta-mappo", "actor_lr", -1e-3),
                                            ("gaussian-happo", "critic_lr", -1.0)])
def test_rl_configs_out_of_their_domain_are_named(algo, key, value):
    # `wdtnopt train --set gamma=2` trained (on returns that grow without bound) and said nothing;
    # only counts and finiteness were checked
    from wdtnopt.agents.registry import algorithm_class, make_config
    from wdtnopt.errors import WdtnoptError

    cls = algorithm_class(algo)
    with pytest.raises(WdtnoptError, match=rf"config: {key}: expected .*, got {value!r}"):
        make_config(cls, {key: value})
    edge = 1.0 if key in ("gamma", "gae_lambda", "tau") else 0.0   # the ends of the domain stay legal
    assert getattr(make_config(cls, {key: edge}), key) == edge


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask_like_open(tmp_path, mask):
    # every file wdtnopt wrote (snapshots, solutions, CSV tables, bench reports, checkpoints) came
    # out 0600 whatever the umask: tempfile.mkstemp's mode survived the rename, so on a shared
    # file system (a Dask cluster's output folder) nobody else could read the results
    import os

    from wdtnopt.io import atomic_write, atomic_write_text

    old = os.umask(mask)
    try:
        (tmp_path / "ref.txt").write_text("x")
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_write(tmp_path / "b.bin", lambda fh: fh.write(b"x"), binary=True)
    finally:
        os.umask(old)
    want = (tmp_path / "ref.txt").stat().st_mode & 0o777
    assert want == 0o666 & ~mask
    for name in ("a.txt", "b.bin"):
        assert (tmp_path / name).stat().st_mode & 0o777 == want, name


@pytest.mark.parametrize("field,value", [("cpu_hz", 1e-300), ("gain", 5e-324)])
def test_relaxation_survives_data_cvxpy_refuses(field, value):
    # cpu_hz = 1e-300 or a subnormal gain is legal, but the conic data overflow and CVXPY raised
    # ValueError("Problem data contains NaN or Inf") through `wdtnopt solve --method relaxation`;
    # a failed conic solve falls back on the trivial prices, whose bound is certified at any prices.
    # Reference: exact on the same snapshot (nothing can be served: every request fails)
    pytest.importorskip("cvxpy")
    from wdtnopt import Snapshot, solve

    d = _snapshot_dict()
    d[field] = (np.full_like(np.asarray(d[field], dtype=float), value)).tolist()
    snap = Snapshot.from_dict(d)
    ref = solve(snap, method="exact")
    sol = solve(snap, method="relaxation")
    assert ref.status.value == "optimal" and not np.asarray(ref.served).any()
    assert sol.objective == pytest.approx(ref.objective, rel=1e-9) and sol.bound <= ref.objective * (1 + 1e-9)
    assert sol.status.value == "optimal"
    if field == "gain":   # the conic data overflow: the trivial prices
        assert sol.stats["conic_status"].startswith("solver failed")
    else:   # c / F overflows: the pairs that cannot meet their deadline at the whole server are not
        # servable in the relaxation's data, so the conic solve runs (and warns nothing)
        assert sol.stats["conic_status"] == "optimal"


@pytest.mark.parametrize("dual", ["columns", "supergradient"])
def test_gap_refuses_a_bound_of_another_trace(dual):
    # gap(results, trace, bound=hb) took a bound computed on another trace of the same sizes and
    # scored the policies against it: the oracle came out 33% *below* its "lower bound" (seed 105
    # scored with seed 104's bound). A regenerated copy of the bound's own trace stays accepted.
    from wdtnopt import gap, hindsight_bound, simulate
    from wdtnopt.errors import WdtnoptError

    sc = Scenario.paper(n_mus=6, n_bss=3)
    tr, other = generate_trace(sc, seed=104, slots=10), generate_trace(sc, seed=105, slots=10)
    hb = hindsight_bound(tr, iters=3, dual=dual, workers=1)
    res = simulate("oracle", other)
    with pytest.raises(WdtnoptError, match="gap: bound: expected a hindsight bound computed on this trace"):
        gap([res], other, bound=hb, iters=0)
    again = generate_trace(sc, seed=104, slots=10)
    row = gap([simulate("oracle", again)], again, bound=hb, iters=0).rows[0]
    own = gap([simulate("oracle", tr)], tr, bound=hindsight_bound(tr, iters=3, dual=dual, workers=1), iters=0).rows[0]
    assert row.gap >= 0 and row.bound_per_mu_slot == own.bound_per_mu_slot


def test_a_progress_switch_that_is_neither_0_nor_1_is_named(monkeypatch):
    from wdtnopt.progress import progress_bar

    monkeypatch.setenv("WDTNOPT_PROGRESS", "yes")
    with pytest.warns(UserWarning, match="WDTNOPT_PROGRESS='yes' is neither 0 nor 1"):
        bar = progress_bar(total=1)
    bar.close()
    monkeypatch.setenv("WDTNOPT_PROGRESS", "0")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bar = progress_bar(total=1)
    assert bar.disable
    bar.close()


@pytest.mark.parametrize("field", ["p_max", "placement_prev"])
def test_a_number_array_with_a_boolean_in_it_is_named(field):
    from wdtnopt import Snapshot
    from wdtnopt.errors import SnapshotError
    from wdtnopt.testing import paper_snapshot

    d = paper_snapshot(N=4, M=2, seed=0).to_dict()
    d[field] = [True] + list(d[field][1:])     # numpy alone would read it as 1 / 1.0
    with pytest.raises(SnapshotError, match=f"{field}.*booleans"):
        Snapshot.from_dict(d)
    d[field][0] = 1
    Snapshot.from_dict(d)                       # the same value as a number is fine


def test_cli_tuple_options_are_given_as_comma_lists(tmp_path, capsys):
    """--option price_cuts=... reached exact as a string (an error for every value a user could type);
    a comma list (or a bracketed one) is a tuple, and its entries are checked by the method."""
    from cli_runner import run_cli
    from wdtnopt.cli.solve import parse_options
    from wdtnopt.testing import paper_snapshot

    assert parse_options(("price_cuts=0.7,1,1.4", "server_prices=[0.5, 2]", "x=(3,)", "y=[]", "z=7")) == {
        "price_cuts": (0.7, 1, 1.4), "server_prices": (0.5, 2), "x": (3,), "y": (), "z": 7}
    path = tmp_path / "s.json"
    paper_snapshot(N=8, M=2, seed=1).save(path)
    code, out, err = run_cli(["solve", str(path), "--option", "price_cuts=0.5,1,2"], capsys)
    assert code == 0 and "optimal" in out, err
    code, out, err = run_cli(["solve", str(path), "--option", "price_cuts=0.5,-1"], capsys)
    assert code == 2 and err.count("\n") == 1 and "price_cuts must be a tuple of numbers > 0, got (0.5, -1)" in err
