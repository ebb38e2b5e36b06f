"""The 6G layer (THz links, RIS, semantic compression levels): defaults off leave traces unchanged,
the channel laws against closed forms and an independent reference, the level choice against brute force."""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from wdtnopt import Scenario, generate_trace


def trace_digest(trace) -> str:
    """SHA-256 over every array of a trace (name, dtype and bytes), in field order."""
    h = hashlib.sha256()
    for f in dataclasses.fields(trace):
        v = getattr(trace, f.name)
        if isinstance(v, np.ndarray):
            h.update(f.name.encode())
            h.update(str(v.dtype).encode())
            h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()


# digests taken before the 6G options existed: the defaults (all off) must reproduce them bit for bit
PINNED = {
    ("paper", 7, 30): "166cbc3d3e8f7c2f25836a3d9a8bd6e5a133ec12bed53664cbb12619dfad8c96",
    ("n12m4", 2, 10): "6c1895f299f284869fb2b659bed44f8bb03d3727bc2a3645798063c5273ab941",
}


def test_default_traces_unchanged_bit_for_bit():
    assert trace_digest(generate_trace(Scenario.paper(), seed=7, slots=30)) == PINNED["paper", 7, 30]
    assert trace_digest(generate_trace(Scenario.paper(n_mus=12, n_bss=4), seed=2, slots=10)) == PINNED["n12m4", 2, 10]
