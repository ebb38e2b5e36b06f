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
