"""Mobility sources (docs/mobility.md): Gauss-Markov unchanged, SUMO FCD and recorded tables
imported and cleaned, and everything downstream on imported traces."""
from __future__ import annotations

import hashlib

import numpy as np

from wdtnopt import Scenario, generate_trace


_PINNED_FIELDS = (
    "bs_positions", "positions", "speed", "heading", "gain", "assoc", "request", "bandwidth", "noise_psd",
    "data_bits", "cycles_per_bit", "dt_size_bits", "deadline", "p_max", "cpu_hz", "storage_bits",
    "backhaul_latency_s", "backhaul_s_per_bit", "hops", "initial_placement")


def _digest(trace) -> str:
    """SHA-256 of the trace's arrays of that commit (name, dtype and bytes, in field order); fields
    added since are left out so that new processes do not move the pin."""
    h = hashlib.sha256()
    for name in _PINNED_FIELDS:
        v = getattr(trace, name)
        if isinstance(v, np.ndarray):
            h.update(name.encode())
            h.update(str(v.dtype).encode())
            h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()


def test_gauss_markov_traces_bit_identical_to_before_the_mobility_sources():
    # digests taken on the generator before mobility sources existed (commit 485e9df)
    assert _digest(generate_trace(Scenario.paper(), seed=0, slots=40)) == \
        "59685c5a9c617e13b721a1b0548b59b66b6ca69a483d6fd04dc5aa34a402dfe9"
    sc = Scenario.paper(n_mus=7, n_bss=4, area_m=300.0)
    assert _digest(generate_trace(sc, seed=11, slots=25)) == \
        "15623be4ddde050c86d6df1c3ef8dd21749d8b54ec25ba04e2b8f229c43abf39"
