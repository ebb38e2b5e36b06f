"""Peak memory of `simulate` and of an environment episode on windowed traces: flat in the horizon T,
against the whole trace.

    python benchmarks/bench_memory.py                      # N=10,000, M=100, T = 50, 100, 200 (+ whole peer)
    python benchmarks/bench_memory.py --preset smoke       # N=300, M=10, seconds
    python benchmarks/bench_memory.py --n-mus 10000 --n-bss 100 --slots 10000   # the full acceptance run

Each run is a fresh process under ``/usr/bin/time -v`` (peak RSS = "Maximum resident set size"):
it generates the trace (``window_slots="auto"`` or ``--window``, or whole for the peer) and simulates the ``static``
policy over it. The peer is the same run on the whole trace (``window_slots=None``), measured in
the same invocation where it fits. Peak RSS includes the interpreter and numpy (about 60 MiB) and
``simulate``'s per-slot record ([T, N] hosts and availability, 9 bytes per MU-slot), the only part
that grows with T.

    python benchmarks/bench_memory.py --env                # an environment episode, N=1,000, M=50, T=400
    python benchmarks/bench_memory.py --env --src /tmp/old # ... and the same episode on another source tree
    python benchmarks/bench_memory.py --env --preset smoke

``--env`` runs one episode of the PettingZoo environment (``parallel_env``, every agent taking its
neutral action, ``strict_actions=False``) instead of ``simulate``: trace generation, the
environment's feature precomputation (``wdtnopt.env.features``) and an observation every slot. The
environment generates its own trace, so the window is chosen through the trace module's
``window_slots="auto"`` thresholds: ``--window W`` sets them so that windows are W slots (as the
tests do), ``auto`` leaves them, ``whole`` keeps the trace whole. ``--src DIR`` (repeatable) adds
a row per horizon with ``wdtnopt`` imported from ``DIR`` (e.g. ``git archive main | tar -x -C DIR``),
the peer before a change, measured in the same invocation.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time

CHILD = """
import sys, time
from wdtnopt import Scenario, generate_trace, simulate
n, m, t, w = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
w = None if w == "whole" else w if w == "auto" else int(w)
t0 = time.perf_counter()
tr = generate_trace(Scenario.paper(n_mus=n, n_bss=m), seed=0, slots=t, window_slots=w)
t1 = time.perf_counter()
res = simulate("static", tr)
t2 = time.perf_counter()
print(f"RESULT window_slots={tr.window_slots} gen_s={t1 - t0:.2f} sim_s={t2 - t1:.2f} "
      f"requests={int(res.requests_per_mu.sum())} energy={res.energy_per_mu_slot!r}")
"""

CHILD_ENV = """
import sys, time
if sys.argv[5] != "-":
    sys.path.insert(0, sys.argv[5])
import wdtnopt.trace as trace_mod
from wdtnopt import Scenario
from wdtnopt.env import parallel_env
n, m, t, w = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if w == "whole":
    trace_mod.WHOLE_TRACE_MAX_BYTES = 1 << 62
elif w != "auto":   # windows of w slots through the "auto" thresholds
    trace_mod.WHOLE_TRACE_MAX_BYTES = 1
    trace_mod.WINDOW_BYTES = trace_mod.windowed_memory_bytes(n, m, t, int(w))
env = parallel_env(Scenario.paper(n_mus=n, n_bss=m), seed=0, slots=t, strict_actions=False)
t0 = time.perf_counter()
env.reset(seed=0)
t1 = time.perf_counter()
steps, reward = 0, 0.0
while env.agents:
    _, rew, _, _, _ = env.step({})
    reward += rew["controller"]
    steps += 1
t2 = time.perf_counter()
print(f"RESULT window_slots={env.trace.window_slots} gen_s={t1 - t0:.2f} sim_s={t2 - t1:.2f} steps={steps} "
      f"return={reward!r} src={sys.argv[5]}")
"""

PRESETS = {
    "smoke": dict(n_mus=300, n_bss=10, slots=[20, 80], whole=[20, 80], window="4"),
    "default": dict(n_mus=10_000, n_bss=100, slots=[50, 100, 200], whole=[20], window="auto"),
}
ENV_PRESETS = {
    "smoke": dict(n_mus=100, n_bss=10, slots=[30], whole=[30], window="5"),
    "default": dict(n_mus=1000, n_bss=50, slots=[400], whole=[], window="auto"),
}


def run(n: int, m: int, t: int, mode: str, env: bool = False, src: str = "-") -> dict[str, str]:
    """One child process under /usr/bin/time -v: its RESULT line, peak RSS (MiB) and wall time (s)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", CHILD_ENV if env else CHILD, str(n), str(m),
                        str(t), mode, src], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"child failed ({p.returncode}): {p.stderr.strip().splitlines()[-1:]}")
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    fields = dict(kv.split("=", 1) for kv in p.stdout.split("RESULT ", 1)[1].split())
    return {**fields, "rss_mib": f"{rss_kib / 1024:,.0f}", "wall_s": f"{wall:.1f}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--n-mus", type=int)
    ap.add_argument("--n-bss", type=int)
    ap.add_argument("--slots", type=int, nargs="+", help="horizons of the windowed runs")
    ap.add_argument("--whole", type=int, nargs="*", help="horizons of the whole-trace peer runs")
    ap.add_argument("--window", help="window_slots of the windowed runs: 'auto' or an integer")
    ap.add_argument("--env", action="store_true", help="an environment episode instead of simulate")
    ap.add_argument("--src", action="append", default=[],
                    help="with --env: also run the windowed rows with wdtnopt imported from this source tree")
    args = ap.parse_args()
    cfg = dict((ENV_PRESETS if args.env else PRESETS)[args.preset])
    for k in ("n_mus", "n_bss", "slots", "whole", "window"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"load {load:.1f}; N={cfg['n_mus']}, M={cfg['n_bss']}, "
          + ("environment episode, neutral actions" if args.env else "policy static"))
    if args.env:
        print("| code | trace | T | window (slots) | peak RSS (MiB) | reset (s) | episode (s) | wall (s) | return |")
        print("|---|---|---|---|---|---|---|---|---|")
        runs = [("-", "whole", t) for t in cfg["whole"]]
        runs += [(src, cfg["window"], t) for t in cfg["slots"] for src in ["-", *args.src]]
        for src, mode, t in runs:
            r = run(cfg["n_mus"], cfg["n_bss"], t, mode, env=True, src=src)
            print(f"| {'this tree' if src == '-' else src} | {mode} | {t:,} | {r['window_slots']} | {r['rss_mib']} | "
                  f"{r['gen_s']} | {r['sim_s']} | {r['wall_s']} | {float(r['return']):.6g} |", flush=True)
        return
    print("| trace | T | window (slots) | peak RSS (MiB) | generate (s) | simulate (s) | wall (s) |")
    print("|---|---|---|---|---|---|---|")
    for mode, horizons in (("whole", cfg["whole"]), (cfg["window"], cfg["slots"])):
        for t in horizons:
            r = run(cfg["n_mus"], cfg["n_bss"], t, mode)
            print(f"| {mode} | {t:,} | {r['window_slots']} | {r['rss_mib']} | {r['gen_s']} | {r['sim_s']} | "
                  f"{r['wall_s']} |", flush=True)


if __name__ == "__main__":
    main()
