"""Where a structured agent's deterministic actions sit relative to its structure's defaults.

    .venv/bin/python benchmarks/deterministic_actions.py --agent pretrained:beta-happo --traces 3 --slots 100

Runs the agent's deterministic policy with ``simulate`` on the unseen traces of ``eval_agents.py``
(seeds ``EVAL_SEED_BASE + i``) and prints, over every slot and DT, the BS action ``u`` of each DT's
host (``u = 0.5`` is the untilted KKT split of the ``kkt`` BS map: docs/agents.md, "Actions and
heads"), its range among the DTs of one BS in one slot (only relative tilts change shares), and the
MU residual ``u`` (0 is exactly the least deadline-meeting power).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wdtnopt import Scenario, generate_trace, simulate  # noqa: E402
from wdtnopt.errors import WdtnoptError  # noqa: E402
from benchmarks import check_counts  # noqa: E402

from benchmarks.eval_agents import EVAL_SEED_BASE  # noqa: E402
from benchmarks.gap_decomposition import agent_policy  # noqa: E402


def deterministic_actions(agent: str, n_mus: int, traces: int, slots: int) -> dict[str, np.ndarray]:
    """``bs_u`` (each DT's host's action), ``bs_range`` (per BS and slot with >= 2 DTs) and ``mu_u``."""
    pol = agent_policy(agent)
    if getattr(pol, "agent", None) is None:   # a rule such as follow: no actions to look at
        raise WdtnoptError(f"--agent: expected a learned agent (checkpoint:DIR, pretrained:ALGO or a weights file "
                           f"PATH.pt), got {agent!r}")
    spec = pol.agent.spec
    if spec.bs_action != "tilt_over_kkt":
        raise SystemExit(f"{agent}: not a KKT BS map (bs_action={spec.bs_action})")
    seen: list[tuple[np.ndarray, ...]] = []
    decide = pol._decide

    def record(state):   # the deterministic decision, as the policy computes it
        out = decide(state)
        seen.append(out)
        return out
    pol._decide = record
    for i in range(traces):
        simulate(pol, generate_trace(Scenario.paper(n_mus=n_mus), seed=EVAL_SEED_BASE + i, slots=slots))
    bs_u, bs_range, mu_u = [], [], []
    for power, w, hosts, *_ in seen:
        own = (np.log(w[hosts, np.arange(len(hosts))]) / spec.bs_tilt + 1.0) / 2.0
        bs_u.append(own)
        mu_u.append((power - 1.0) / spec.residual_max)
        bs_range += [np.ptp(own[hosts == m]) for m in range(w.shape[0]) if (hosts == m).sum() > 1]
    return {"bs_u": np.concatenate(bs_u), "bs_range": np.array(bs_range), "mu_u": np.concatenate(mu_u),
            "bs_tilt": np.array(spec.bs_tilt)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agent", default="pretrained:beta-happo")
    ap.add_argument("--n-mus", type=int, default=30)
    ap.add_argument("--traces", type=int, default=3)
    ap.add_argument("--slots", type=int, default=100)
    args = ap.parse_args()
    try:   # bad input: one line and exit 2, as the CLI (a wrong checkpoint path was a traceback)
        check_counts(args, n_mus=1, traces=1, slots=1)
        r = deterministic_actions(args.agent, args.n_mus, args.traces, args.slots)
    except WdtnoptError as e:
        print(f"deterministic_actions.py: error: {e}", file=sys.stderr)
        sys.exit(2)
    q = [0.0, 0.05, 0.5, 0.95, 1.0]
    for key in ("bs_u", "bs_range", "mu_u"):
        print(f"{key}: mean {r[key].mean():.4f} std {r[key].std():.4f} quantiles {q}: {np.round(np.quantile(r[key], q), 4)}")
    print(f"within-BS share ratio from the tilt: median {np.exp(2 * r['bs_tilt'] * np.median(r['bs_range'])):.4f}, "
          f"95% {np.exp(2 * r['bs_tilt'] * np.quantile(r['bs_range'], 0.95)):.4f}")


if __name__ == "__main__":
    main()
