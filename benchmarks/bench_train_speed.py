"""Training speed, before and after: CPU seconds per training iteration of two source trees.

    git archive main | tar -x -C /tmp/main_src        # the baseline tree (any commit)
    nice -n 10 python benchmarks/bench_train_speed.py --baseline /tmp/main_src --n-mus 30 --repeats 3

Each (algorithm, tree) pair runs in its own process (``PYTHONPATH`` = the tree), interleaved
repeat by repeat so both trees see the same machine load (``--algos kkt_cpu``: the environment's CPU split
alone, timed on the calls that random actions make, with a hash of its outputs): one warm-up iteration (imports, first
allocations, MADDPG's warm-up fill), then ``--iterations`` timed ones; the figure is the process's
CPU time (user + system) per iteration, the median over repeats. Every run also prints a sha256 of
the agent's whole state after the timed iterations; the two trees must agree (the speed-ups change
no number), and the script exits 1 if they do not. ``--smoke``: a tiny run of each tree (seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ALGOS = ("beta-happo", "gaussian-happo", "beta-mappo", "maddpg", "kkt_cpu")

CHILD = r"""
import hashlib, json, resource, sys
import numpy as np, torch
from wdtnopt import Scenario
from wdtnopt.agents.trainer import Trainer
algo, n_mus, iters, config = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
tr = Trainer(algo, Scenario.paper(n_mus=n_mus), seed=0, config=config)
tr.train_iteration()
r0 = resource.getrusage(resource.RUSAGE_SELF)
for _ in range(iters):
    tr.train_iteration()
r1 = resource.getrusage(resource.RUSAGE_SELF)
h = hashlib.sha256()
def feed(obj):
    if isinstance(obj, torch.Tensor):
        h.update(obj.detach().contiguous().numpy().tobytes())
    elif isinstance(obj, np.ndarray):
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            h.update(str(k).encode()); feed(obj[k])
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            feed(x)
    else:
        h.update(repr(obj).encode())
feed(tr.agent.state_dict())
cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
import wdtnopt
print(json.dumps({"cpu_s_per_iter": cpu / iters, "state_sha256": h.hexdigest()[:16], "module": wdtnopt.__file__}))
"""


CHILD_KKT = r"""
import hashlib, json, resource, sys
import numpy as np
from wdtnopt import Scenario
from wdtnopt.env import core
from wdtnopt.env.batched import BatchedWdtnEnv
n_mus, steps = int(sys.argv[1]), int(sys.argv[2])
calls, kkt = [], core.kkt_cpu
core.kkt_cpu = lambda *a, **k: calls.append(a) or kkt(*a, **k)
env = BatchedWdtnEnv(Scenario.paper(n_mus=n_mus), 16, 0, 100, None, mu_action="power_over_need",
                     bs_action="tilt_over_kkt")
env.reset()
rng = np.random.default_rng(0)
m = env.n_bss
for _ in range(steps):
    env.step(rng.uniform(1.0, 1.2, (16, n_mus)), rng.uniform(0.0, 1.0, (16, m, n_mus)), rng.integers(0, m, (16, n_mus)))
h = hashlib.sha256()
r0 = resource.getrusage(resource.RUSAGE_SELF)
for a in calls:
    h.update(kkt(*a).tobytes())
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
import wdtnopt
print(json.dumps({"cpu_s_per_iter": cpu / len(calls), "state_sha256": h.hexdigest()[:16], "module": wdtnopt.__file__}))
"""


def run(tree: Path, algo: str, n_mus: int, iterations: int, config: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = ([CHILD_KKT, str(n_mus), str(iterations)] if algo == "kkt_cpu"
            else [CHILD, algo, str(n_mus), str(iterations), json.dumps(config)])
    # -P: no current directory ahead of PYTHONPATH (a checkout as the working directory would shadow the tree)
    out = subprocess.run([sys.executable, "-P", "-c", *args], env=env, capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if Path(res["module"]).resolve().parents[1] != tree.resolve():
        sys.exit(f"the run meant for {tree} imported {res['module']}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", type=Path, required=True, help="source tree of the baseline (has wdtnopt/)")
    ap.add_argument("--candidate", type=Path, default=Path(__file__).resolve().parents[1],
                    help="source tree measured against it (default: this checkout)")
    ap.add_argument("--algos", nargs="+", default=list(ALGOS[:4]), choices=ALGOS,
                    help="training algorithms; kkt_cpu: the environment's KKT CPU split alone (CPU s per call on the "
                         "calls of --iterations env steps of 16 environments under random actions; hash of its outputs)")
    ap.add_argument("--n-mus", type=int, default=30)
    ap.add_argument("--iterations", type=int, default=3, help="timed iterations per run (after one warm-up)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (N = 6, 1 iteration, 1 repeat, in place of --n-mus, "
                    "--iterations and --repeats): checks the script, measures nothing")
    args = ap.parse_args()
    for name in ("n_mus", "iterations", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')}: expected an integer >= 1, got {getattr(args, name)}")
    config = {}
    if args.smoke:
        args.n_mus, args.iterations, args.repeats = 6, 1, 1
        config = {"n_envs": 2, "rollout_steps": 10, "episode_slots": 10}
    for tree in (args.baseline, args.candidate):
        if not (tree / "wdtnopt" / "__init__.py").is_file():
            sys.exit(f"--baseline/--candidate: {tree} is not a source tree with wdtnopt/")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; N = {args.n_mus}, {args.iterations} timed iterations "
          f"per run, {args.repeats} interleaved repeats")
    print("| algorithm | baseline (CPU s/iter; kkt_cpu: s/call) | candidate | speed-up | same state |")
    print("|---|---|---|---|---|")
    same_all = True
    for algo in args.algos:
        cfg = {**config, "warmup_steps": 1}  if algo == "maddpg" and args.smoke else dict(config)
        times: dict[str, list[float]] = {"baseline": [], "candidate": []}
        digests: dict[str, set[str]] = {"baseline": set(), "candidate": set()}
        for _ in range(args.repeats):
            for name, tree in (("baseline", args.baseline), ("candidate", args.candidate)):
                r = run(tree, algo, args.n_mus, args.iterations, cfg)
                times[name].append(r["cpu_s_per_iter"])
                digests[name].add(r["state_sha256"])
        same = digests["baseline"] == digests["candidate"] and len(digests["baseline"]) == 1
        same_all &= same
        b, c = statistics.median(times["baseline"]), statistics.median(times["candidate"])
        print(f"| {algo} | {b:.4g} | {c:.4g} | {b / c:.2f}x | {'yes' if same else 'NO'} |")
    print("load average at the end:", f"{os.getloadavg()[0]:.1f}")
    sys.exit(0 if same_all else 1)


if __name__ == "__main__":
    main()
