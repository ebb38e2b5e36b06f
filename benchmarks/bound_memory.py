"""Peak memory of the hindsight bound beyond the trace, against its estimate (docs/longterm.md,
"Memory of the bound").

    nice -n 10 .venv/bin/python benchmarks/bound_memory.py --dual supergradient --cases 30x5x10 60x5x10 40x12x6
    nice -n 10 .venv/bin/python benchmarks/bound_memory.py --dual columns --cases 60x5x20

Each case N x M x T runs in a fresh process, with ``workers=1`` (every slot's state in that one
process): a first bound of one dual step on another trace of the same size loads the imports and
HiGHS, then the peak resident memory is reset (``/proc/self/clear_refs``), the resident memory
(``VmRSS``) read, and the peak during ``hindsight_bound(trace, iters=ITERS, dual=DUAL,
method=METHOD)`` (``VmHWM``) read after it; their difference is printed
beside ``bound_memory_bytes(N, M, T, dual=DUAL, method=METHOD)`` and their ratio, with the CPU
seconds of the measured bound.
"""
from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = """
import sys, time
from wdtnopt import Scenario, generate_trace, hindsight_bound
n, m, t, iters, dual, method = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
tr = generate_trace(Scenario.paper(n_mus=n, n_bss=m), seed=0, slots=t)
hindsight_bound(tr, iters=1, workers=1, dual=dual, method=method)
tr = generate_trace(Scenario.paper(n_mus=n, n_bss=m), seed=1, slots=t)
def status(key):
    return [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key)][0]
with open("/proc/self/clear_refs", "w") as f:   # the peak (VmHWM) restarts from the RSS now
    f.write("5")
r0 = status("VmRSS:")
c0 = time.process_time()
hindsight_bound(tr, iters=iters, workers=1, dual=dual, method=method)
print((status("VmHWM:") - r0) * 1024, time.process_time() - c0)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dual", choices=["columns", "supergradient"], default="supergradient")
    ap.add_argument("--cases", nargs="+", default=["30x5x10", "60x5x10", "40x12x6"])
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--method", choices=["exact", "fast"], default="exact", help="supergradient's inner method")
    args = ap.parse_args()
    from wdtnopt.bounds import bound_memory_bytes

    print(f"| N x M x T | dual ({args.method}) | iters | RSS growth (MiB) | estimate (MiB) | estimate / growth | CPU s |")
    print("|---|---|---|---|---|---|---|")
    for case in args.cases:
        n, m, t = (int(v) for v in case.split("x"))
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(m), str(t), str(args.iters), args.dual, args.method],
                             capture_output=True, text=True, check=True).stdout.split()
        grown, cpu = int(out[-2]), float(out[-1])
        est = bound_memory_bytes(n, m, t, dual=args.dual, method=args.method)
        ratio = est / grown if grown > 0 else float("inf")
        print(f"| {n} x {m} x {t} | {args.dual} | {args.iters} | {grown / 2**20:.1f} | {est / 2**20:.1f} | {ratio:.1f} | {cpu:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
