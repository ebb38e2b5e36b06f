"""Mobility sources (docs/mobility.md): Gauss-Markov unchanged, SUMO FCD and recorded tables
imported and cleaned, and everything downstream on imported traces."""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from wdtnopt import Scenario, generate_trace


def _digest(trace) -> str:
    """SHA-256 of every array of a trace (name, dtype and bytes, in field order)."""
    h = hashlib.sha256()
    for f in dataclasses.fields(trace):
        v = getattr(trace, f.name)
        if isinstance(v, np.ndarray):
            h.update(f.name.encode())
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
