"""Oversize traces are refused before anything is allocated, with the estimate and what to change."""
import tracemalloc

import numpy as np
import pytest

import wdtnopt.trace as trace_mod
from wdtnopt import Scenario, generate_trace
from wdtnopt.errors import WdtnoptError
from wdtnopt.trace import trace_memory_bytes


@pytest.mark.parametrize("n, m, t", [(100, 5, 50), (200, 10, 100), (50, 20, 200)])
def test_estimate_covers_the_measured_peak(n, m, t):
    tracemalloc.start()
    try:
        generate_trace(Scenario.paper(n_mus=n, n_bss=m), seed=0, slots=t)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= trace_memory_bytes(n, m, t) <= 3 * peak


def test_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: 50 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(WdtnoptError) as info:
            generate_trace(Scenario.paper(n_mus=2000, n_bss=50), seed=0, slots=1000, window_slots=None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20                       # nothing of the trace was allocated
    msg = str(info.value)
    assert "\n" not in msg and "slots" in msg and "GiB" in msg
    fit = int(msg.split("use at most ")[1].split(" slots")[0].replace(",", ""))
    assert trace_memory_bytes(2000, 50, fit) <= 50 << 20 < trace_memory_bytes(2000, 50, fit + 1)
    # what fits is generated as before
    assert generate_trace(Scenario.paper(n_mus=20, n_bss=5), seed=0, slots=10).slots == 10


def test_cli_oversize_is_one_line_exit_2(capsys):
    from wdtnopt.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--policy", "static", "--n-mus", "1000000", "--n-bss", "1000", "--slots", "100000",
              "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: n_mus, n_bss:") and "TiB" in err and "fewer MUs" in err


def test_trace_refusal_message_byte_for_byte(monkeypatch):
    """check_trace_fits words its refusal through check_memory_fits: the message as written before."""
    have = 3 << 30
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: have)
    n, m, t = 20_000, 100, 1_000
    per_slot = trace_memory_bytes(n, m, 2) - trace_memory_bytes(n, m, 1)
    fit = (have - trace_memory_bytes(n, m, 0)) // per_slot
    need = trace_memory_bytes(n, m, t)
    with pytest.raises(WdtnoptError) as info:
        trace_mod.check_trace_fits(n, m, t)
    assert str(info.value) == (f"slots: a trace of 1,000 slots x 20,000 MUs x 100 BSs needs about {need / 2**30:,.1f} GiB "
                               f"of memory and 3.0 GiB is available; use at most {fit:,} slots at this size, or fewer "
                               "MUs or BSs")


@pytest.mark.parametrize("check", ["trace", "bound"])
def test_refusal_states_the_memory_its_advice_used(monkeypatch, check):
    """The memory available is read once: the figure in the message is the one the slots that fit
    were computed from, even if the system's figure moves meanwhile."""
    from wdtnopt.bounds import bound_memory_bytes, check_bound_fits

    reads = iter([3 << 30, 1 << 20, 1 << 20])
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: next(reads))
    n, m, t = (20_000, 100, 1_000) if check == "trace" else (2_000, 50, 1_000)
    with pytest.raises(WdtnoptError) as info:
        (trace_mod.check_trace_fits if check == "trace" else check_bound_fits)(n, m, t)
    msg = str(info.value)
    assert "of memory and 3.0 GiB is available; " in msg and msg.startswith("slots: ")
    if check == "bound":
        assert f"at most {(3 << 30) // bound_memory_bytes(n, m, 1):,} slots fit" in msg


def test_one_slot_that_fits_is_worded_in_the_singular(monkeypatch):
    from wdtnopt.bounds import bound_memory_bytes, check_bound_fits

    n, m = 2_000, 50
    one, base = bound_memory_bytes(n, m, 1), bound_memory_bytes(n, m, 0)
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: base + (one - base) * 3 // 2)
    with pytest.raises(WdtnoptError, match=r"at most 1 slot fits \(--slots\)$"):
        check_bound_fits(n, m, 10)
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: base + (one - base) * 5 // 2)
    with pytest.raises(WdtnoptError, match=r"at most 2 slots fit \(--slots\)$"):
        check_bound_fits(n, m, 10)
