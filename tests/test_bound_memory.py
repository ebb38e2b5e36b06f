"""The hindsight bound's memory: an over-estimate of the measured peak, refused before any work."""
import subprocess
import sys
import textwrap

import pytest

import wdtnopt.trace as trace_mod
from wdtnopt import Scenario, generate_trace, hindsight_bound
from wdtnopt.bounds import bound_memory_bytes
from wdtnopt.errors import WdtnoptError

CLI = [sys.executable, "-c", "import sys; from wdtnopt.cli import main; main(sys.argv[1:])"]


@pytest.mark.parametrize("n, m, t", [(60, 5, 20), (40, 12, 6)])
def test_estimate_covers_the_measured_peak(n, m, t):
    """Process RSS grown by the bound (20 dual evaluations), measured in a fresh process."""
    code = textwrap.dedent(f"""
        import resource
        from wdtnopt import Scenario, generate_trace, hindsight_bound
        tr = generate_trace(Scenario.paper(n_mus={n}, n_bss={m}), seed=0, slots={t})
        hindsight_bound(tr, iters=1, workers=1)   # imports, HiGHS loaded: not the bound's own memory
        tr = generate_trace(Scenario.paper(n_mus={n}, n_bss={m}), seed=1, slots={t})
        r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        hindsight_bound(tr, iters=20, workers=1)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) * 1024)
    """)
    grown = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[-1])
    assert grown <= bound_memory_bytes(n, m, t)


def test_oversize_bound_is_refused_before_any_work(monkeypatch):
    trace = generate_trace(Scenario.paper(n_mus=30, n_bss=5), seed=0, slots=10)
    per_slot = bound_memory_bytes(30, 5, 1)
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: 3 * per_slot + 1)
    with pytest.raises(WdtnoptError, match=r"^slots: the hindsight bound of 10 slots x 30 MUs x 5 BSs .* at most 3 slots fit"):
        hindsight_bound(trace)
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: per_slot // 2)
    with pytest.raises(WdtnoptError, match=r"^n_mus, n_bss: .*not even one slot fits"):
        hindsight_bound(trace)
    # the supergradient dual has its own estimate: refused below it, run above it
    sg_slot = bound_memory_bytes(30, 5, 1, dual="supergradient")
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: 4 * sg_slot)
    with pytest.raises(WdtnoptError, match=r"^slots: the supergradient hindsight bound of 10 slots x 30 MUs x 5 BSs "
                                           r".* at most 4 slots fit"):
        hindsight_bound(trace, dual="supergradient", workers=1)
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: 10 * sg_slot)
    assert hindsight_bound(trace, iters=1, dual="supergradient", workers=1).total_energy >= 0


def test_supergradient_estimate_covers_the_measured_peak():
    """As above for the supergradient dual (default inner method exact, 20 dual steps)."""
    n, m, t = 20, 4, 6
    code = textwrap.dedent(f"""
        from wdtnopt import Scenario, generate_trace, hindsight_bound
        tr = generate_trace(Scenario.paper(n_mus={n}, n_bss={m}), seed=0, slots=1)
        hindsight_bound(tr, iters=1, workers=1, dual="supergradient")   # imports and HiGHS only
        tr = generate_trace(Scenario.paper(n_mus={n}, n_bss={m}), seed=1, slots={t})
        def status(key):
            return [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key)][0]
        with open("/proc/self/clear_refs", "w") as f:   # the peak (VmHWM) restarts from the RSS now
            f.write("5")
        r0 = status("VmRSS:")
        hindsight_bound(tr, iters=20, workers=1, dual="supergradient")
        print((status("VmHWM:") - r0) * 1024)
    """)
    grown = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[-1])
    assert 0 < grown <= bound_memory_bytes(n, m, t, dual="supergradient"), grown


def test_supergradient_estimate_by_method_and_workers():
    one = bound_memory_bytes(30, 5, 10, dual="supergradient")
    assert one == 10 * (4 * 2**20 + 2048 * 30 * 30 * 5)
    assert bound_memory_bytes(30, 5, 10, dual="supergradient", workers=2) == one + 2 * 64 * 2**20
    assert bound_memory_bytes(30, 5, 10, dual="supergradient", method="fast") < one


@pytest.mark.parametrize("cmd, extra, head", [
    ("bound", [], "n_mus, n_bss: the hindsight bound"), ("gap", [], "n_mus, n_bss: the hindsight bound"),
    ("bound", ["--dual", "supergradient"], "n_mus, n_bss: the supergradient hindsight bound"),
    # fast keeps no solver per slot: about 12 GiB a slot here (slots or n_mus, n_bss by the machine)
    ("gap", ["--dual", "supergradient", "--method", "fast"], "the supergradient hindsight bound")])
def test_cli_oversize_bound_is_one_line_exit_2(cmd, extra, head):
    """Before the trace (1e5 x 1e3) is generated or any policy run."""
    p = subprocess.run(CLI + [cmd, "--n-mus", "100000", "--n-bss", "1000", "--slots", "100", *extra],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    out = (p.stdout + p.stderr).strip()
    assert out.count("\n") == 0 and "Traceback" not in out
    assert out.startswith("error: ") and f"{head} of 100 slots x 100,000 MUs x 1,000 BSs needs about" in out
    assert out.startswith(f"error: {head}") or out.startswith(("error: slots: ", "error: n_mus, n_bss: "))
