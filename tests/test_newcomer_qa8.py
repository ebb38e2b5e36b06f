"""A newcomer's pass (8): bugs found from the outside, each checked against an independent reference
(a plain loop over the records, a closed form, a brute force), failing before its fix."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt import Scenario
from wdtnopt.processes.mobility import Records, clean


def test_a_100_hz_track_is_thinned_to_the_duplicate_tolerance_not_collapsed_onto_its_first_record():
    # two vehicles recorded every 5 ms for 4 s, moving in a straight line at 2 m/s: every record is
    # within the 10 ms tolerance of the one before, but only half of them of the last KEPT one
    # (docs/mobility.md, "Cleaning", rule 4); the cleaner used to chain the tolerance and keep only
    # the first record of each vehicle, so the track covered t = 0..0 s and nothing could be replayed
    dt, steps = 0.005, 801
    t = np.round(np.arange(steps) * dt, 9)
    rows = [(float(tk), f"v{i}", 100.0 + 2.0 * tk + 50 * i, 300.0 + 10 * i) for tk in t for i in range(2)]
    tt, vid, x, y = (list(c) for c in zip(*rows))
    sc = Scenario.paper(n_mus=2)
    got = clean(Records.from_arrays(tt, vid, x, y), sc, slots=8)

    # the reference: a loop keeping a record only past duplicate_tol_s of the last kept one
    tol = 0.01
    kept = [0.0]
    for tk in t[1:]:
        if tk - kept[-1] > tol:
            kept.append(float(tk))
    assert got.report.counts["near_duplicate"] == 2 * (steps - len(kept))
    slot_t = np.arange(8) * sc.slot_s
    want = np.stack([np.stack([100.0 + 2.0 * slot_t + 50 * i, np.full(8, 300.0 + 10 * i)], -1) for i in range(2)], 1)
    np.testing.assert_allclose(got.positions, want, rtol=0, atol=1e-9)
