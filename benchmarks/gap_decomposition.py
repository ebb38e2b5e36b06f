"""Where a learned agent's gap to the hindsight bound sits: swap one agent type for the myopic oracle.

    .venv/bin/python benchmarks/gap_decomposition.py --agent pretrained:beta-happo --traces 3 --slots 200
    .venv/bin/python benchmarks/gap_decomposition.py --preset smoke
    .venv/bin/python benchmarks/gap_decomposition.py --isolate --traces 3 --slots 100 --gap-iters 8 --out OUT.csv

Every row is one hybrid policy run by ``simulate`` (every slot scored by ``wdtnopt.evaluate``) on the
same unseen traces (seeds ``EVAL_SEED_BASE + i``, as ``eval_agents.py``). A hybrid takes each decision
from one of three sources:

* placement at frame starts: the agent's controller (``agent``), the myopic oracle's (``oracle``),
  ``follow``'s (move towards the serving BS) or stay (``static``);
* CPU shares: the agent's BS weights (``agent``), equal shares (``equal``), the energy-optimal split
  among the requesting DTs with the gate (``kkt``: the environment's ``bs_action="tilt_over_kkt"`` at
  tilt 1), or the oracle's optimal shares at the applied placement (``oracle``: its CPU per DT passed
  as BS weights; a DT the oracle does not serve gets weight 0 and so gives up);
* power and served set: the agent's structured MU action (``agent``), exactly the least
  deadline-meeting power at the announced share with the give-up gate (``need``), or the oracle's
  whole allocation at the applied placement (``oracle``, which also sets the shares).

The gap of each row is ``(E - LB) / LB`` with ``LB`` the hindsight bound of the trace at that row's
own per-MU failure ratios (``wdtnopt.gap``), one bound per trace computed once (``--gap-iters`` dual
steps). Writes ``benchmarks/results/gap_decomposition.csv``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wdtnopt import Scenario, generate_trace, simulate  # noqa: E402
from wdtnopt.errors import WdtnoptError  # noqa: E402
from benchmarks import check_counts  # noqa: E402
from wdtnopt.policies import Policy, make_policy  # noqa: E402

from benchmarks.eval_agents import EVAL_SEED_BASE, team_cost, write_rows  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
HYBRIDS = [  # (placement, shares, power) sources: module docstring
    ("agent", "agent", "agent"),
    ("agent", "agent", "need"),
    ("agent", "equal", "need"),
    ("agent", "kkt", "need"),
    ("agent", "oracle", "need"),
    ("agent", "oracle", "oracle"),
    ("oracle", "agent", "agent"),
    ("oracle", "equal", "need"),
    ("oracle", "kkt", "need"),
    ("oracle", "oracle", "oracle"),
    ("static", "equal", "need"),
    ("static", "kkt", "need"),
    ("follow", "kkt", "need"),
    ("static", "oracle", "oracle"),
]


def agent_policy(agent: str) -> Any:
    """``checkpoint:DIR`` / ``pretrained:ALGO``, or a pretrained weights file ``PATH.pt`` (e.g. an
    earlier version of a shipped agent, to decompose its gap)."""
    if not agent.endswith(".pt"):
        return make_policy(agent)
    from wdtnopt.agents.checkpoint import CheckpointPolicy, load_agent_actors
    from wdtnopt.agents.pretrained import read_pretrained
    pol = CheckpointPolicy.__new__(CheckpointPolicy)
    payload = read_pretrained(Path(agent))
    pol._setup(payload, Path(agent))
    load_agent_actors(pol.agent, payload["actors"], Path(agent))
    pol.name = f"file:{agent}"
    return pol


class HybridPolicy(Policy):
    """Placement, shares and power each from the agent, a fixed rule or the myopic oracle (module docstring)."""

    def __init__(self, agent: str, placement: str, shares: str, power: str):
        if agent == "none" and "agent" in (placement, shares, power):
            raise ValueError("HybridPolicy: without an agent every decision needs another source")
        self.agent = None if agent == "none" else agent_policy(agent)
        self.oracle = make_policy("oracle")
        self.placement, self.shares, self.power = placement, shares, power
        self.name = f"place={placement} shares={shares} power={power}"

    def reset(self, trace: Any) -> None:
        super().reset(trace)
        if self.agent is not None:
            self.agent.reset(trace)
        self.oracle.reset(trace)

    def penalties(self, state: Any) -> dict[str, Any]:
        return self.oracle.penalties(state) if "oracle" in (self.placement, self.shares, self.power) else {}

    def place(self, snapshot: Any, state: Any) -> np.ndarray:
        # the agent acts on the frame start's observation in any case
        mine = self.agent.place(snapshot, state) if self.agent is not None else snapshot.placement_prev
        if self.placement == "agent":
            return mine
        if self.placement == "oracle":
            return self.oracle.place(snapshot, state)
        if self.placement == "follow":
            return make_policy("follow").place(snapshot, state)
        return snapshot.placement_prev

    def allocate(self, snapshot: Any, state: Any) -> Any:
        from wdtnopt.env.core import decision
        n, m = snapshot.n_mus, snapshot.n_bss
        if self.agent is None:
            power, weights = np.ones(n), np.ones((m, n))
        else:
            pending = self.agent._pending if self.agent._pending is not None else self.agent._decide(state)
            self.agent._pending = None
            power, weights, _ = pending
        if self.power == "oracle":
            return self.oracle.allocate(snapshot, state)
        bs_action = self.agent.agent.spec.bs_action if self.shares == "agent" else "weights"
        if self.shares in ("equal", "kkt"):
            weights = np.ones((m, n))
        elif self.shares == "oracle":
            sol = self.oracle._solve(snapshot)
            x = snapshot.placement_prev
            weights = np.zeros((m, n))
            weights[x, np.arange(n)] = np.where(np.asarray(sol.served), np.asarray(sol.cpu_hz) / snapshot.cpu_hz[x], 0.0)
        if self.shares == "kkt":
            bs_action = "tilt_over_kkt"
        if self.power == "need":
            power = np.ones(n)
        return decision(snapshot, power, weights, mu_action="power_over_need",
                        price_j=self.trace.scenario.failure_price, bs_action=bs_action)[0]


def cached_bound(trace: Any, iters: int, cache: Path | None = None) -> Any:
    """The hindsight bound of ``trace`` (``iters`` dual steps), kept as a pickle under ``cache``
    (default ``benchmarks/results/bounds/``, keyed by N, seed, slots and iters; our own files only)."""
    import pickle
    from wdtnopt import hindsight_bound
    cache = RESULTS / "bounds" if cache is None else Path(cache)
    path = cache / f"hb_n{trace.n_mus}_seed{trace.seed}_slots{trace.slots}_iters{iters}.pkl"
    if path.is_file():
        with open(path, "rb") as fh:
            return pickle.load(fh)   # noqa: S301 - written by this function
    hb = hindsight_bound(trace, iters=iters, workers=1)
    cache.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(hb, fh)
    return hb


RULES = [("static", "equal", "need"), ("static", "kkt", "need")]
"""``--agent none``: the no-learning rules only (any N)."""
SHORT = [("agent", "agent", "agent"), ("agent", "agent", "need"), ("agent", "equal", "need"),
         ("static", "equal", "need"), ("static", "kkt", "need")]
"""``--short``: the agent, its parts replaced by the fixed rules, and the no-learning rules."""
ISOLATE = [("agent", "agent", "agent"), ("static", "agent", "agent"), ("static", "agent", "need"),
           ("agent", "kkt", "agent"), ("agent", "kkt", "need"), ("static", "kkt", "need")]
"""``--isolate``: one agent type at a time set to its structure's default (controller: stay; BS: the
untilted KKT split; MU: exactly the least power), to find which learned type moved away from it."""


def decompose(agent: str, scenario: Scenario, traces: int, slots: int, gap_iters: int,
              hybrids: list[tuple[str, str, str]] = HYBRIDS) -> list[dict]:
    """One row per hybrid (module docstring), with ``oracle``, ``lyapunov``, ``follow`` and
    ``static`` for reference."""
    from wdtnopt import gap
    trs = [generate_trace(scenario, seed=EVAL_SEED_BASE + i, slots=slots) for i in range(traces)]
    if agent != "none":   # a bad path, file or size fails here, before any hybrid runs
        agent_policy(agent).reset(trs[0])
    pols: list[Any] = [HybridPolicy(agent, *h) for h in hybrids] + ["oracle", "lyapunov", "follow", "static"]
    names = [p if isinstance(p, str) else p.name for p in pols]
    runs = {nm: [simulate(p, tr) for tr in trs] for nm, p in zip(names, pols)}
    gaps: dict[str, list[float]] = {nm: [] for nm in names}
    if gap_iters:
        for k, tr in enumerate(trs):
            hb = cached_bound(tr, gap_iters)
            for nm, row in zip(names, gap([runs[nm][k] for nm in names], tr, bound=hb, iters=1).rows):
                gaps[nm].append(float(row.gap))
    rows = []
    for nm in names:
        rs = runs[nm]
        fails = sum(int(r.failures_per_mu.sum()) for r in rs)
        reqs = sum(int(r.requests_per_mu.sum()) for r in rs)
        rows.append({"policy": nm, "agent": agent, "n_mus": scenario.n_mus, "traces": traces, "slots": slots,
                     "team_cost": round(float(np.mean([team_cost(r, scenario) for r in rs])), 5),
                     "energy_mj": round(float(np.mean([r.energy_per_mu_slot for r in rs])) * 1e3, 4),
                     "failure_ratio": round(fails / max(reqs, 1), 4),
                     "gap": round(float(np.mean(gaps[nm])), 4) if gap_iters else "",
                     "gap_min": round(float(np.min(gaps[nm])), 4) if gap_iters else "",
                     "gap_max": round(float(np.max(gaps[nm])), 4) if gap_iters else ""})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agent", default="pretrained:beta-happo",
                    help="checkpoint:DIR, pretrained:ALGO, a weights file PATH.pt, or none (the rules only)")
    ap.add_argument("--n-mus", type=int, default=30)
    ap.add_argument("--traces", type=int, default=3)
    ap.add_argument("--slots", type=int, default=200)
    ap.add_argument("--gap-iters", type=int, default=10)
    ap.add_argument("--preset", choices=["smoke", "default"], default="default")
    ap.add_argument("--short", action="store_true", help="only the rows of SHORT (and the references)")
    ap.add_argument("--isolate", action="store_true", help="only the rows of ISOLATE (and the references)")
    ap.add_argument("--out", default=str(RESULTS / "gap_decomposition.csv"))
    args = ap.parse_args()
    if args.preset == "smoke":
        args.traces, args.slots, args.gap_iters = 1, 20, 2
    try:   # bad input: one line and exit 2, as the CLI (a wrong checkpoint path was a traceback)
        check_counts(args, n_mus=1, traces=1, slots=1, gap_iters=0)
        if not (args.agent == "none" or args.agent.endswith(".pt")
                or args.agent.startswith(("checkpoint:", "pretrained:"))):
            raise WdtnoptError(f"--agent: expected checkpoint:DIR, pretrained:ALGO, a weights file PATH.pt or none, "
                               f"got {args.agent!r}")
        rows = decompose(args.agent, Scenario.paper(n_mus=args.n_mus), args.traces, args.slots, args.gap_iters,
                         RULES if args.agent == "none" else ISOLATE if args.isolate else SHORT if args.short
                         else HYBRIDS)
    except WdtnoptError as e:
        print(f"gap_decomposition.py: error: {e}", file=sys.stderr)
        sys.exit(2)
    write_rows(rows, Path(args.out))


if __name__ == "__main__":
    main()
