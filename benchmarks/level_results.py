"""exact's and fast's results on snapshots with a semantic menu, in hex, for comparing two revisions.

    python benchmarks/level_results.py > head.txt
    PYTHONPATH=/path/to/other/package python benchmarks/level_results.py > base.txt
    diff head.txt base.txt

One line per (method, snapshot): status, objective and bound as ``float.hex``, decomposition rounds
(or bundle iterations) and HiGHS nodes, then the process CPU time (s; drop that column before
diffing). Snapshots: ``wdtnopt.testing.tiny_snapshot`` seeds 200-239 (N = 5, M = 2) and 100-107
(``tight_cpu``), ``loaded_snapshot(15, 3)`` and ``paper_snapshot(20, 4)`` seeds 0-3, each with a random
menu (``wdtnopt.testing.with_menu``; a revision without it takes the ``with_menu`` of a
``test_sixg`` module on ``PYTHONPATH``, its tests folder). ``--moved-start`` adds the snapshots of
tests/test_level_options.py whose previous placement overflows a server and whose failure prices are
1e6 and 1e306 J (the level master then starts in units of the summed penalties).
An editable install of the package shadows ``PYTHONPATH`` only when run from the checkout itself:
run from another folder.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def cases(moved_start: bool):
    from wdtnopt.testing import loaded_snapshot, paper_snapshot, tiny_snapshot
    try:
        from wdtnopt.testing import with_menu
    except ImportError:   # a revision before wdtnopt.testing had it
        from test_sixg import with_menu

    for seed in range(40):
        yield f"tiny{200 + seed}", with_menu(tiny_snapshot(200 + seed, N=5, M=2), seed, levels=3,
                                             min_accuracy=0.85 if seed % 2 else 0.0)
    for seed in range(8):
        yield f"tcpu{100 + seed}", with_menu(tiny_snapshot(100 + seed, N=5, M=2, kind="tight_cpu"), seed, levels=3,
                                             min_accuracy=0.85)
    for seed in range(4):
        yield f"loaded{seed}", with_menu(loaded_snapshot(N=15, M=3, seed=seed), seed, levels=2)
        yield f"paper{seed}", with_menu(paper_snapshot(N=20, M=4, seed=seed), seed, levels=3)
    if moved_start:
        for seed in (2, 3, 5, 7):
            for penalty_j in (1e6, 1e306):
                s = tiny_snapshot(seed, N=4, M=2, kind="tight_cpu")
                st = np.full(2, 2.0 * s.dt_size_bits.sum())
                st[int(s.placement_prev[0])] = 0.999 * s.dt_size_bits[0]
                s = s.replace(failure_penalty=np.full(4, penalty_j), migration_penalty=np.full(4, 1e-3), storage_bits=st)
                yield f"moved{seed}-{penalty_j:g}", with_menu(s, seed, levels=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["exact", "fast"])
    ap.add_argument("--moved-start", action="store_true", help="add the moved-start snapshots (1e6 and 1e306 J)")
    args = ap.parse_args()
    from wdtnopt.solvers import relative_gap, solve

    for name, s in cases(args.moved_start):
        for method in args.methods:
            t = time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sol = solve(s, method=method)
            st = sol.stats
            print(method, name, sol.status, float(sol.objective).hex(), float(sol.bound).hex(),
                  st.get("iterations"), st.get("milp_nodes"), f"gap={relative_gap(sol.objective, sol.bound):.3g}",
                  f"{time.process_time() - t:.3f}", flush=True)


if __name__ == "__main__":
    main()
