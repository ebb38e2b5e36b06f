"""The memory estimate of a `simulate` command (trace, records, per-slot work) covers the measured
peak, and what cannot fit is refused in one line before anything is generated."""
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

import wdtnopt.trace as trace_mod
from wdtnopt import Scenario, generate_trace, simulate
from wdtnopt.simulation import PROCESS_BASE_BYTES, run_memory_bytes, simulation_memory_bytes, slot_work_bytes

CHILD = """
import sys
import wdtnopt.trace as trace_mod
from wdtnopt.cli import main
from wdtnopt.simulation import run_memory_bytes
n, m, t, policy, w = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
if w != "auto":   # windows of w slots through the "auto" thresholds
    trace_mod.WHOLE_TRACE_MAX_BYTES = 1
    trace_mod.WINDOW_BYTES = trace_mod.windowed_memory_bytes(n, m, t, int(w))
window = trace_mod.plan_windows(n, m, t)
need = run_memory_bytes(n, m, t, [policy], window)["total"]
try:
    main(["simulate", "--policy", policy, "--n-mus", str(n), "--n-bss", str(m), "--slots", str(t), "--no-progress"])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
# peak RSS of this process's own memory (VmHWM: ru_maxrss would also count the forking parent's pages)
with open("/proc/self/status") as f:
    hwm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
print("RESULT", window, need, hwm)
"""


@pytest.mark.parametrize("n, m, t, policy, window", [
    (300, 10, 40, "static", "auto"),
    (2000, 40, 12, "follow", "auto"),
    (1500, 20, 30, "predictive", "4"),
    (150, 5, 12, "lyapunov", "auto"),
])
def test_the_cli_estimate_covers_the_measured_peak(n, m, t, policy, window):
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc/self/status for the peak RSS")
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(m), str(t), policy, window],
                         capture_output=True, text=True, check=True).stdout
    got_window, need, rss = out.split("RESULT ", 1)[1].split()
    assert (got_window == "None") == (window == "auto")
    # the whole process's peak resident memory (interpreter and imports included) is covered ...
    assert int(rss) <= int(need), (int(rss) >> 20, int(need) >> 20)
    # ... by an estimate of the same order, not an arbitrary margin
    assert int(need) <= 4 * int(rss), (int(rss) >> 20, int(need) >> 20)


@pytest.mark.parametrize("policy, n, m", [("static", 2000, 20), ("follow", 2000, 20), ("predictive", 2000, 20),
                                          ("lyapunov", 200, 8)])
def test_per_slot_work_covers_the_traced_working_set(policy, n, m):
    tr = generate_trace(Scenario.paper(n_mus=n, n_bss=m), seed=1, slots=3)
    simulate(policy, generate_trace(Scenario.paper(n_mus=10, n_bss=3), seed=0, slots=2))   # imports done
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        simulate(policy, tr)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    work = peak - simulation_memory_bytes(n, 3)
    assert 0 < work <= slot_work_bytes(policy, n, m) - PROCESS_BASE_BYTES
    # the pair term is the one that grows: 4x the MU-BS pairs, at most about 4x the work
    assert slot_work_bytes(policy, 4 * n, m) - PROCESS_BASE_BYTES < 4 * (slot_work_bytes(policy, n, m) - PROCESS_BASE_BYTES)


def test_estimate_parts_and_a_learned_agent_adds_torch_and_its_features():
    a = run_memory_bytes(1000, 10, 50, ["static"], None)
    assert a["trace"] == trace_mod.trace_memory_bytes(1000, 10, 50) and a["records"] == simulation_memory_bytes(1000, 50)
    assert a["total"] == a["trace"] + a["records"] + a["work"]
    two = run_memory_bytes(1000, 10, 50, ["static", "lyapunov"], 7)
    assert two["records"] == 2 * a["records"] and two["work"] == slot_work_bytes("lyapunov", 1000, 10)
    assert two["trace"] == trace_mod.windowed_memory_bytes(1000, 10, 50, 7)
    ck = slot_work_bytes("checkpoint:/some/dir", 1000, 10, window_slots=5)
    assert ck > slot_work_bytes("predictive", 1000, 10) + (256 << 20)


def test_an_oversize_command_exits_2_with_one_line_before_generating(monkeypatch, capsys):
    from wdtnopt.cli import main

    n, m, t = 10000, 100, 200
    w = trace_mod.plan_windows(n, m, t)
    need = run_memory_bytes(n, m, t, ["lyapunov"], w)
    # the trace alone and the records alone fit; with lyapunov's per-slot work they do not
    have = need["total"] - 1
    assert need["trace"] < have and need["records"] < have
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: have)
    calls = []
    monkeypatch.setattr(trace_mod, "_SlotGenerator", lambda *a, **k: calls.append(a))
    args = ["simulate", "--policy", "lyapunov", "--n-mus", str(n), "--n-bss", str(m), "--slots", str(t), "--no-progress"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2 and not calls
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: slots: simulating 1 policy on 200 slots") and "work" in err
    fit = int(err.split("use at most ")[1].split(" slots")[0].replace(",", ""))
    assert run_memory_bytes(n, m, fit, ["lyapunov"], w)["total"] <= have < run_memory_bytes(n, m, fit + 1, ["lyapunov"], w)["total"]
    # too little for even one slot of lyapunov's work: fewer MUs or BSs, or a lighter policy
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: need["trace"] + need["records"])
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err and not calls
    assert err.endswith("not even one slot fits: use fewer MUs or BSs, or a lighter policy than lyapunov")
    assert err.startswith("error: n_mus, n_bss:")   # fewer slots cannot help: the fields that can


def test_an_unforeseen_memory_error_is_one_line_exit_2(monkeypatch, capsys):
    import numpy as np

    import wdtnopt.simulation as sim_mod
    from wdtnopt.cli import main

    def huge(*args, **kwargs):   # what numpy raises when an array cannot be allocated
        return np.empty((1 << 25, 1 << 20))   # 256 TiB: more than any address space gives

    monkeypatch.setattr(sim_mod, "simulate", huge)
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--policy", "static", "--n-mus", "5", "--n-bss", "2", "--slots", "3", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err
    assert err.startswith("error: out of memory (Unable to allocate") and err.endswith("use fewer slots, MUs or BSs")
