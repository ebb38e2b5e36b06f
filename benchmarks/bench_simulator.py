"""Simulator throughput: slot-steps per second of `simulate` with the `follow` policy.

    python benchmarks/bench_simulator.py --n-mus 30 1000 --slots 200 --repeats 5

Trace generation and the slot loop (snapshot + policy + evaluate) are timed separately; the
figure is the median over repeats. The peer is the same loop with a policy that does no work
(every request declined), so the ratio shows what the evaluate/snapshot machinery costs.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

from wdtnopt import Decision, Scenario, generate_trace, simulate
from wdtnopt.policies import Policy


class DeclineAll(Policy):
    name = "decline-all"

    def allocate(self, snapshot, state):
        n = snapshot.n_mus
        return Decision(placement=snapshot.placement_prev, served=np.zeros(n, bool), tx_time=np.zeros(n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-mus", type=int, nargs="+", default=[30, 1000])
    ap.add_argument("--n-bss", type=int, default=5)
    ap.add_argument("--slots", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print("| N | trace gen (slots/s) | simulate follow (slot-steps/s) | decline-all loop (slot-steps/s) | follow / loop |")
    print("|---|---|---|---|---|")
    for n in args.n_mus:
        sc = Scenario.paper(n_mus=n, n_bss=args.n_bss)
        gen, fol, dec = [], [], []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            tr = generate_trace(sc, seed=r, slots=args.slots)
            t1 = time.perf_counter()
            simulate("follow", tr)
            t2 = time.perf_counter()
            simulate(DeclineAll(), tr)
            t3 = time.perf_counter()
            gen.append(args.slots / (t1 - t0))
            fol.append(args.slots / (t2 - t1))
            dec.append(args.slots / (t3 - t2))
        g, f, d = (statistics.median(x) for x in (gen, fol, dec))
        print(f"| {n} | {g:,.0f} | {f:,.0f} | {d:,.0f} | {f / d:.2f} |")


if __name__ == "__main__":
    main()
