"""The supergradient hindsight bound with the inner method ``fast``: its inner defaults
(``wdtnopt.bounds.FAST_INNER_OPTIONS``: no continuation in exact, no extra primal rounds) against
fast's own defaults (the continuation in exact's branch and bound on every slot whose Lagrangian gap
is above the inner 1e-3, up to 9.5 s a slot), on the same trace and dual budget, in one run.

    python benchmarks/bench_bound_fast_inner.py --n-mus 30 --n-bss 5 --slots 10 --iters 4 --repeats 3
    python benchmarks/bench_bound_fast_inner.py --preset smoke

Reports each run's CPU seconds (``time.process_time``, one process: ``workers=1``; median of
``--repeats``), the bound (J per MU per slot) and their ratios (before / after).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from wdtnopt import Scenario, generate_trace, hindsight_bound
from wdtnopt.solvers import FastOptions

PRESETS = {"smoke": dict(n_mus=6, n_bss=2, slots=4, iters=2, repeats=1),
           "default": dict(n_mus=30, n_bss=5, slots=10, iters=4, repeats=3)}
BEFORE = {k: getattr(FastOptions, k) for k in ("exact_pairs", "extra_rounds", "search_starts")}
"""fast's own defaults of the options the bound now sets (what the bound's inner solves used before)."""


def run(trace, iters: int, options: dict | None) -> dict:
    c0 = time.process_time()
    hb = hindsight_bound(trace, iters=iters, workers=1, dual="supergradient", method="fast", solver_options=options)
    return dict(cpu_s=time.process_time() - c0, value=hb.energy_per_mu_slot, solves=hb._evaluator.solves)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default=None)
    ap.add_argument("--n-mus", type=int, default=30)
    ap.add_argument("--n-bss", type=int, default=5)
    ap.add_argument("--slots", type=int, default=10)
    ap.add_argument("--iters", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    if a.preset:
        for k, v in PRESETS[a.preset].items():
            setattr(a, k, v)
    trace = generate_trace(Scenario.paper(n_mus=a.n_mus, n_bss=a.n_bss), seed=a.seed, slots=a.slots)
    out: dict = {"n_mus": a.n_mus, "n_bss": a.n_bss, "slots": a.slots, "iters": a.iters, "seed": a.seed}
    for name, options in (("before", BEFORE), ("after", None)):
        runs = [run(trace, a.iters, options) for _ in range(a.repeats)]
        out[name] = dict(cpu_s=statistics.median(r["cpu_s"] for r in runs), value=runs[0]["value"],
                         solves=runs[0]["solves"])
    out["cpu_ratio"] = out["before"]["cpu_s"] / out["after"]["cpu_s"]
    out["value_ratio"] = out["after"]["value"] / out["before"]["value"] if out["before"]["value"] else None
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
