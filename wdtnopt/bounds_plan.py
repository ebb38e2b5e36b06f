"""A legal open-loop plan built with hindsight: how far any valid per-trace bound can rise (docs/longterm.md,
"What a per-trace bound can reach").

On one replayed trace, a *plan* (a placement for every frame and a served set and allocation for
every slot, fixed in advance) is a legal policy: its actions depend on the slot index only, so it is
causal, and the simulator replays it under the model's rules (docs/model.md, section 4: moves at frame
starts only, a moved DT unavailable for ``ceil(T_mig / tau)`` slots, storage and CPU capacities). A
lower bound computed on that trace for failure targets ``eps`` must lie below the energy of every
legal policy on it whose per-MU failure ratios are <= eps, so below the plan's energy. A plan built
knowing the trace therefore caps every valid per-trace bound from above.

:func:`hindsight_plan` builds one frame by frame, knowing each frame's requests, channels and data:

* a HiGHS MILP chooses the frame's placement ``x[n, m]`` (held over the frame, storage respected, a
  DT still migrating at the frame start kept where it is) and the served requests ``w[t, n, m]``:
  a request is servable on ``m`` only where its DT is available there (a DT moved from ``prev`` to
  ``m`` is unavailable in the first ``ceil(T_mig / tau)`` slots of the frame), with CPU shares
  ``f >= f_min w`` (the deadline at full power) within each server's CPU in every slot, and energy
  under-estimated by tangents of ``phi(f) = E(T - c / f)`` (convex, decreasing), refined by a few
  outer-approximation rounds at the chosen CPU;
* each MU must be served at least as often, counted from the trace's start to the frame's end, as a
  reference run served it (``served``, e.g. the myopic oracle's); a shortfall is allowed at a large
  price so the MILP is always feasible, and carried to the next frames;
* the frame's slots are then allocated exactly (the KKT allocation of docs/model.md, section 5, for
  the chosen served set at the plan's placement) on the simulator's own snapshots.

Its cost is what :func:`wdtnopt.simulate` (hence :func:`wdtnopt.evaluate`) reports when replaying
it: :class:`PlanPolicy` replays the recorded placements and decisions, nothing else.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cost import Decision, Evaluation
from .errors import WdtnoptError
from .policies import Policy
from .snapshot import Snapshot
from .trace import Trace

ENERGY_UNIT_J = 1e-3      # the MILP's energy unit (J)
SHORTFALL_PRICE = 1e3     # per request served fewer than the reference's, in ENERGY_UNIT_J (1 J)
RESELECT_TIME_FACTOR = 4   # the whole-trace reselection's time limit, in frame time limits
TANGENTS = 8              # initial tangent points per busy pair, geometric from f_min to the server's CPU


@dataclass
class HindsightPlan:
    """A legal open-loop plan of one trace and the simulator's result of replaying it.

    ``placement [F, N]`` the placement set at each frame start, ``served [T, N]`` (bool),
    ``tx_time [T, N]`` (s) and ``cpu_hz [T, N]`` (cycles/s) the decision of every slot, ``result``
    the :class:`~wdtnopt.simulation.SimResult` of the replay, ``shortfall [N]`` the requests each MU
    was served fewer than the reference (0 everywhere: its failures are <= the reference's),
    ``statuses`` the MILP status of each frame, ``violations`` how many constraint breaches
    :func:`wdtnopt.evaluate` listed over the replay's slots (0 for a plan that the model accepts as
    is; the simulator refuses every hard one, a missed deadline would count as a failure).
    """

    placement: np.ndarray
    served: np.ndarray
    tx_time: np.ndarray
    cpu_hz: np.ndarray
    result: Any
    shortfall: np.ndarray
    statuses: list[str] = field(default_factory=list)
    violations: int = 0

    @property
    def energy_j(self) -> float:
        """Total energy of the replay (J), by :func:`wdtnopt.evaluate` through the simulator."""
        return float(self.result.energy_per_mu.sum())

    def policy(self) -> "PlanPolicy":
        """The open-loop policy that replays this plan."""
        return PlanPolicy(self.placement, self.served, self.tx_time, self.cpu_hz)


class PlanPolicy(Policy):
    """Replays a fixed plan: placement ``placement[t // K]`` at frame starts, the recorded decision of each slot.

    Parameters
    ----------
    placement : array_like of int, shape [F, N]
        The placement at each frame start.
    served, tx_time, cpu_hz : array_like, shape [T, N]
        Each slot's decision in the optimization view (bool, s, cycles/s).

    Raises
    ------
    WdtnoptError
        When a run starts (``reset``) on a trace whose frames, slots or MUs the arrays do not match.
    """

    name = "hindsight-plan"

    def __init__(self, placement: Any, served: Any, tx_time: Any, cpu_hz: Any):
        self.plan_placement = np.asarray(placement, dtype=np.int64)
        self.served = np.asarray(served, dtype=bool)
        self.tx_time = np.asarray(tx_time, dtype=float)
        self.cpu_hz = np.asarray(cpu_hz, dtype=float)

    def reset(self, trace: Any) -> None:
        self.trace = trace
        K = trace.scenario.frame_slots
        frames = -(-trace.slots // K)
        shapes = (self.served.shape, self.tx_time.shape, self.cpu_hz.shape)
        if self.plan_placement.shape != (frames, trace.n_mus) or set(shapes) != {(trace.slots, trace.n_mus)}:
            raise WdtnoptError(f"plan: expected placement [{frames}, {trace.n_mus}] and served, tx_time, cpu_hz "
                               f"[{trace.slots}, {trace.n_mus}], got {self.plan_placement.shape} and {shapes}")

    def place(self, snapshot: Snapshot, state: Any) -> np.ndarray:
        return self.plan_placement[state.t // self.trace.scenario.frame_slots]

    def allocate(self, snapshot: Snapshot, state: Any) -> Decision:
        t = state.t
        return Decision(placement=snapshot.placement_prev, served=self.served[t].copy(),
                        tx_time=self.tx_time[t].copy(), cpu_hz=self.cpu_hz[t].copy())


def phi_of_cpu(pd: Any, n: np.ndarray, m: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The energy of MU ``n`` served on server ``m`` with CPU ``f`` and its derivative in ``f``.

    ``phi(f) = E_n(max(T[n, m] - c_n / f, t_min,n))`` (docs/model.md, section 3: the transmission
    gets what the deadline leaves after relay and DT update), convex and non-increasing in f.

    Parameters
    ----------
    pd : PairData
        The slot's per-(MU, server) data (solvers/allocation.py).
    n, m : ndarray of int, shape [P]
        Busy pairs (``cycles > 0``).
    f : ndarray, shape [P]
        CPU (cycles/s), ``f >= f_min[n, m]``.

    Returns
    -------
    tuple of ndarray, shape [P]
        ``phi(f)`` (J) and ``phi'(f)`` (J per cycle/s, <= 0).
    """
    from .solvers.allocation import energy_slope

    c = pd.cycles[n]
    t = np.maximum(pd.budget[n, m] - c / f, pd.t_min[n])
    val = pd.energy(n, t)
    der = -energy_slope(t, pd.alpha[n], pd.k[n]) * c / (f * f)
    return val, der


class _Frame:
    """The MILP of one frame (module docstring); energy in ENERGY_UNIT_J, CPU in shares of the server."""

    def __init__(self, trace: Trace, slots: list[int], pairs_ok: Any, need: np.ndarray, time_limit: float,
                 gap: float, place: tuple[np.ndarray, np.ndarray] | None = None):
        """``pairs_ok(t, req)``: [R, M] where request ``req`` may be served (availability); ``place``:
        ``(prev, unavailable)`` at the frame start for a placement to choose, None for fixed hosts
        (then ``pairs_ok`` allows each DT's host only)."""
        import highspy

        from .solvers.allocation import PairData
        from .solvers.highs import RowBatch, quiet_highs

        N, M = trace.n_mus, trace.n_bss
        self.slots = slots
        self.N, self.M = N, M
        h = quiet_highs(heuristics=True)
        h.setOptionValue("mip_rel_gap", float(gap))
        self.time_limit = time_limit
        inf = highspy.kHighsInf
        empty_i, empty_f = np.zeros(0, np.int32), np.zeros(0)
        rows = RowBatch()
        ncol = 0
        if place is not None:
            # x[n, m]: the frame's placement; a DT still migrating stays where it is
            prev, unavailable = place
            lo_x = np.zeros((N, M))
            up_x = np.ones((N, M))
            stuck = np.flatnonzero(unavailable > 0)
            up_x[stuck] = 0.0
            up_x[stuck, prev[stuck]] = lo_x[stuck, prev[stuck]] = 1.0
            h.addCols(N * M, np.zeros(N * M), lo_x.ravel(), up_x.ravel(), 0, empty_i, empty_i, empty_f)
            h.changeColsIntegrality(N * M, np.arange(N * M, dtype=np.int32), np.full(N * M, highspy.HighsVarType.kInteger))
            ncol = N * M
            for n in range(N):
                rows.add(1.0, 1.0, [(n * M + m, 1.0) for m in range(M)])
            for m in range(M):
                cap = float(trace.storage_bits[m])
                rows.add(-math.inf, 1.0, [(n * M + m, float(trace.dt_size_bits[n]) / cap) for n in range(N)])
        self.pairs: list[tuple[int, Any, np.ndarray, np.ndarray, np.ndarray, int]] = []   # (t, pd, req, n, m, w0)
        serve_terms: dict[int, list[tuple[int, float]]] = {}
        self.tangent_rows = 0
        for t in self.slots:
            req = np.flatnonzero(trace.request[t])
            if req.size == 0:
                continue
            sub = trace.snapshot(t, placement_prev=trace.initial_placement, migrating=np.zeros(N, bool),
                                 failure_penalty=np.zeros(N), migration_penalty=np.zeros(N),
                                 allow_migration=True).select(req)
            pd = PairData.of(sub)
            ok = pd.servable & pairs_ok(t, req)
            bn, bm = np.nonzero(ok)
            P = bn.size
            if P == 0:
                continue
            busy = pd.cycles[bn] > 0
            w0 = ncol
            # w (binary), f (share), e (energy); a pair without cycles has f = 0 and its energy fixed
            e_fixed = np.where(busy, 0.0, pd.energy(bn, pd.budget[bn, bm]) / ENERGY_UNIT_J)
            cost = np.concatenate([e_fixed, np.zeros(P), np.ones(P)])
            up = np.concatenate([np.ones(P), np.where(busy, 1.0, 0.0), np.where(busy, inf, 0.0)])
            h.addCols(3 * P, cost, np.zeros(3 * P), up, 0, empty_i, empty_i, empty_f)
            h.changeColsIntegrality(P, np.arange(w0, w0 + P, dtype=np.int32), np.full(P, highspy.HighsVarType.kInteger))
            ncol += 3 * P
            F = pd.cpu_hz[bm]
            with np.errstate(divide="ignore", invalid="ignore"):
                fmin = np.where(busy, pd.f_min[bn, bm] / np.where(F > 0, F, 1.0), 0.0)
            for j in range(P):
                g = int(req[bn[j]])
                if place is not None:
                    rows.add(-math.inf, 0.0, [(w0 + j, 1.0), (g * M + bm[j], -1.0)])              # w <= x
                if busy[j]:
                    rows.add(-math.inf, 0.0, [(w0 + P + j, 1.0), (w0 + j, -1.0)])                 # f <= w
                    rows.add(-math.inf, 0.0, [(w0 + j, float(fmin[j])), (w0 + P + j, -1.0)])      # f >= f_min w
                serve_terms.setdefault(g, []).append((w0 + j, 1.0))
            for m in range(M):
                js = np.flatnonzero((bm == m) & busy)
                if js.size:
                    rows.add(-math.inf, 1.0, [(w0 + P + j, 1.0) for j in js])                    # CPU of m in t
            for a in np.unique(bn):
                js = np.flatnonzero(bn == a)
                if js.size > 1:
                    rows.add(-math.inf, 1.0, [(w0 + j, 1.0) for j in js])                         # one server
            jb = np.flatnonzero(busy)
            if jb.size:
                fm = pd.f_min[bn[jb], bm[jb]]
                pts = [np.minimum(fm * (F[jb] / fm) ** q, F[jb]) for q in np.linspace(0.0, 1.0, TANGENTS)]
                self._tangents(rows, pd, bn, bm, w0, P, jb, pts)
            self.pairs.append((t, pd, req, bn, bm, w0))
        # the reference's count: served + shortfall >= need
        for n in np.flatnonzero(need > 0):
            u = ncol
            h.addCols(1, np.array([SHORTFALL_PRICE]), np.zeros(1), np.array([inf]), 0, empty_i, empty_i, empty_f)
            ncol += 1
            rows.add(float(need[n]), math.inf, serve_terms.get(int(n), []) + [(u, 1.0)])
        rows.add_to(h)
        self.h, self.n_x = h, (N * M if place is not None else 0)

    def _tangents(self, rows: Any, pd: Any, bn: np.ndarray, bm: np.ndarray, w0: int, P: int, js: np.ndarray,
                  points: list[np.ndarray]) -> None:
        """Rows ``e >= phi(p) w + phi'(p) (f F - p w)`` for pairs ``js`` at CPU points ``p`` (cycles/s)."""
        F = pd.cpu_hz[bm[js]]
        for p in points:
            val, der = phi_of_cpu(pd, bn[js], bm[js], p)
            a_w = (val - der * p) / ENERGY_UNIT_J
            a_f = der * F / ENERGY_UNIT_J
            for j, aw, af in zip(js, a_w, a_f):
                rows.add(-math.inf, 0.0, [(w0 + j, float(aw)), (w0 + P + j, float(af)), (w0 + 2 * P + j, -1.0)])
                self.tangent_rows += 1

    def solve(self, rounds: int) -> tuple[np.ndarray | None, dict[int, np.ndarray] | None, str]:
        """The placement [N] (None without ``place``) and served sets {t: bool [N]} of the MILP's
        incumbent (None: no incumbent), and HiGHS's status."""
        from .solvers.highs import RowBatch, run_model

        res = run_model(self.h, time_limit=self.time_limit)
        for _ in range(rounds):
            if res.x is None:
                break
            rows = RowBatch()
            for t, pd, req, bn, bm, w0 in self.pairs:
                P = bn.size
                w, f, e = res.x[w0:w0 + P], res.x[w0 + P:w0 + 2 * P], res.x[w0 + 2 * P:w0 + 3 * P]
                js = np.flatnonzero((w > 0.5) & (pd.cycles[bn] > 0))
                if js.size == 0:
                    continue
                p = np.maximum(f[js], 1e-12) * pd.cpu_hz[bm[js]]
                p = np.maximum(p, pd.f_min[bn[js], bm[js]])
                val, _ = phi_of_cpu(pd, bn[js], bm[js], p)
                under = val / ENERGY_UNIT_J > e[js] * (1 + 1e-4) + 1e-9
                if under.any():
                    self._tangents(rows, pd, bn, bm, w0, P, js[under], [p[under]])
            if not len(rows):
                break
            rows.add_to(self.h)
            res = run_model(self.h, time_limit=self.time_limit)
        if res.x is None:
            return None, None, res.raw_status
        x = res.x[:self.n_x].reshape(self.N, self.M).argmax(axis=1) if self.n_x else None
        served: dict[int, np.ndarray] = {}
        for t, pd, req, bn, bm, w0 in self.pairs:
            w = res.x[w0:w0 + bn.size] > 0.5
            s = np.zeros(self.N, bool)
            s[req[bn[w]]] = True
            served[t] = s
        return x, served, res.raw_status


class _Executor(PlanPolicy):
    """Runs a plan given as placements and served sets, allocating each slot exactly on the
    simulator's snapshot (KKT, docs/model.md, section 5) and recording the decisions it replays."""

    name = "hindsight-plan"

    def __init__(self, placement: np.ndarray | None = None, want: np.ndarray | None = None):
        self.given_placement, self.want = placement, want

    def reset(self, trace: Any) -> None:
        self.trace = trace
        T, N, K = trace.slots, trace.n_mus, trace.scenario.frame_slots
        self.plan_placement = (np.zeros((-(-T // K), N), dtype=np.int64) if self.given_placement is None
                               else self.given_placement.copy())
        self.served = np.zeros((T, N), bool)
        self.tx_time = np.zeros((T, N))
        self.cpu_hz = np.zeros((T, N))
        if self.want is None:
            self.want = np.zeros((T, N), bool)
        self.violations = 0

    def allocate(self, snapshot: Snapshot, state: Any) -> Decision:
        from .solvers.allocation import allocate

        t = state.t
        a = allocate(snapshot, snapshot.placement_prev, served=self.want[t] & snapshot.request & ~snapshot.migrating)
        self.served[t], self.tx_time[t], self.cpu_hz[t] = a.served, np.where(a.served, a.tx_time, 0.0), a.cpu_hz
        return super().allocate(snapshot, state)

    def observe(self, snapshot: Snapshot, evaluation: Evaluation) -> None:
        self.violations += len(evaluation.violations)


class _Planner(_Executor):
    """Builds the plan while the simulator runs it: the frame's MILP at each frame start (module docstring)."""

    def __init__(self, reference_served: np.ndarray, time_limit: float, gap: float, rounds: int):
        super().__init__()
        self.reference_served = reference_served
        self.time_limit, self.gap, self.rounds = time_limit, gap, rounds

    def reset(self, trace: Any) -> None:
        self.want = None
        super().reset(trace)
        self.count = np.zeros(trace.n_mus, dtype=np.int64)
        self.statuses: list[str] = []

    def place(self, snapshot: Snapshot, state: Any) -> np.ndarray:
        tr, t0 = self.trace, state.t
        N, M, K = tr.n_mus, tr.n_bss, tr.scenario.frame_slots
        t_end = min(t0 + K, tr.slots)
        need = self.reference_served[:t_end].sum(axis=0) - self.count
        prev, unavailable = state.placement.copy(), state.unavailable.copy()
        # slots from the frame start during which DT n cannot be served on m (docs/model.md, section 4)
        k_move = np.stack([tr.migration_slots(prev, np.full(N, m)) for m in range(M)], axis=1)
        blocked = np.where(np.arange(M)[None, :] == prev[:, None], unavailable[:, None], k_move)
        frame = _Frame(tr, list(range(t0, t_end)), lambda t, req: t - t0 >= blocked[req], need, self.time_limit,
                       self.gap, place=(prev, unavailable))
        x, served, status = frame.solve(self.rounds)
        self.statuses.append(status)
        if x is None or served is None:   # no incumbent in the time limit: stay, serve the reference's set
            x = prev
            served = {t: self.reference_served[t] for t in range(t0, t_end)}
        for t, s in served.items():
            self.want[t] = s
        self.plan_placement[t0 // K] = x
        return x

    def observe(self, snapshot: Snapshot, evaluation: Evaluation) -> None:
        super().observe(snapshot, evaluation)
        self.count += evaluation.served & snapshot.request


def _reselect(trace: Trace, run: Any, counts: np.ndarray, time_limit: float, gap: float, rounds: int
              ) -> tuple[np.ndarray | None, str]:
    """Served sets [T, N] over the whole trace at the placements and availability of ``run`` (a
    SimResult), each MU served at least ``counts`` times at least energy (the MILP of the module
    docstring without placement variables); None without an incumbent."""
    M = trace.n_bss
    host, unavailable = run.placement, run.unavailable

    def pairs_ok(t: int, req: np.ndarray) -> np.ndarray:
        return (np.arange(M)[None, :] == host[t, req][:, None]) & ~unavailable[t, req][:, None]

    milp = _Frame(trace, list(range(trace.slots)), pairs_ok, counts, time_limit, gap)
    _, served, status = milp.solve(rounds)
    if served is None:
        return None, status
    want = np.zeros((trace.slots, trace.n_mus), bool)
    for t, s in served.items():
        want[t] = s
    return want, status


class ServedRecorder(Policy):
    """Wraps a policy and records which requests it served in every slot (``served [T, N]``).

    Parameters
    ----------
    policy : Policy
        The policy to run (every call is passed on).
    """

    def __init__(self, policy: Policy):
        self.inner = policy
        self.name = getattr(policy, "name", type(policy).__name__)

    def reset(self, trace: Any) -> None:
        self.trace = trace
        self.served = np.zeros((trace.slots, trace.n_mus), bool)
        self._t = 0
        self.inner.reset(trace)

    def penalties(self, state: Any) -> dict[str, Any]:
        return self.inner.penalties(state)

    def place(self, snapshot: Snapshot, state: Any) -> np.ndarray:
        return self.inner.place(snapshot, state)

    def allocate(self, snapshot: Snapshot, state: Any) -> Decision:
        self._t = state.t
        return self.inner.allocate(snapshot, state)

    def observe(self, snapshot: Snapshot, evaluation: Evaluation) -> None:
        self.served[self._t] = evaluation.served & snapshot.request
        self.inner.observe(snapshot, evaluation)

    def extras(self) -> dict[str, Any]:
        return self.inner.extras() if hasattr(self.inner, "extras") else {}


def hindsight_plan(trace: Trace, served: Any, *, time_limit: float = 30.0, gap: float = 1e-3,
                   rounds: int = 2, reselect: bool = True, passes: int = 2) -> HindsightPlan:
    """A legal open-loop plan of ``trace`` serving each MU at least as often as ``served`` (module docstring).

    Parameters
    ----------
    trace : Trace
        A whole trace without server failures or semantic compression levels.
    served : array_like of bool, shape [T, N]
        A reference run's served requests (:class:`ServedRecorder`); the plan serves each MU at least
        as often, counted up to each frame's end, where the MILP finds a way (``shortfall`` says where not).
    time_limit : float
        Seconds of each MILP solve (a frame has ``1 + rounds`` of them).
    gap : float
        Relative gap each frame MILP is solved to (the plan is legal whatever the gap).
    rounds : int
        Outer-approximation rounds per frame (tangents added at the chosen CPU, the MILP re-solved).
    reselect : bool
        Then choose the served sets again over the whole trace at the plan's placements (each MU's
        count over the trace instead of up to each frame's end; one MILP of ``RESELECT_TIME_FACTOR
        time_limit`` s per solve), kept if its replay spends less with no larger shortfall.
    passes : int
        Rounds of both steps: each later pass places the frames for the served sets of the best
        plan so far (as its reference), stopping when a pass does not improve.

    Returns
    -------
    HindsightPlan
        The plan and the simulator's result of running it (its energy by :func:`wdtnopt.evaluate`).

    Raises
    ------
    WdtnoptError
        If ``served`` is not a [T, N] boolean array within the trace's requests, an option is out of
        range, or the scenario has server failures or semantic compression levels (not covered).
    """
    from .bounds_migration import check_covered
    from .simulation import simulate

    if not isinstance(trace, Trace):
        raise WdtnoptError(f"trace: expected a wdtnopt.Trace, got {type(trace).__name__}")
    try:
        check_covered(trace.scenario)
    except WdtnoptError as e:
        raise WdtnoptError(str(e).replace("migration_bound", "hindsight_plan")) from None
    ref = np.asarray(served)
    if ref.shape != (trace.slots, trace.n_mus) or ref.dtype != bool:
        raise WdtnoptError(f"served: expected a boolean array of shape [{trace.slots}, {trace.n_mus}], "
                           f"got {ref.dtype} {ref.shape}")
    if (ref & ~np.asarray(trace.request)).any():
        raise WdtnoptError("served: a served request where the trace has none")
    if not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise WdtnoptError(f"time_limit: expected seconds > 0, got {time_limit!r}")
    if not (isinstance(gap, (int, float)) and 0 <= gap < 1):
        raise WdtnoptError(f"gap: expected a number in [0, 1), got {gap!r}")
    if not (isinstance(rounds, int) and rounds >= 0):
        raise WdtnoptError(f"rounds: expected an integer >= 0, got {rounds!r}")
    if not (isinstance(passes, int) and passes >= 1):
        raise WdtnoptError(f"passes: expected an integer >= 1, got {passes!r}")
    counts = ref.sum(axis=0)

    def shortfall(r: Any) -> np.ndarray:
        return np.maximum(counts - (r.requests_per_mu - r.failures_per_mu), 0)

    def better(r: Any, than: Any) -> bool:
        return bool(shortfall(r).sum() <= shortfall(than).sum() and r.energy_per_mu.sum() < than.energy_per_mu.sum())

    best: _Executor | None = None
    res: Any = None
    statuses: list[str] = []
    target = ref
    for _ in range(passes):
        planner = _Planner(target, float(time_limit), float(gap), rounds)
        run = simulate(planner, trace)
        statuses += planner.statuses
        cand: tuple[_Executor, Any] = (planner, run)
        if reselect:
            want, status = _reselect(trace, run, counts, float(time_limit) * RESELECT_TIME_FACTOR, float(gap), rounds)
            statuses.append(f"reselect: {status}")
            if want is not None:
                ex = _Executor(planner.plan_placement, want)
                run2 = simulate(ex, trace)
                if better(run2, run):
                    cand = (ex, run2)
        if best is not None and not better(cand[1], res):
            break
        best, res = cand
        target = best.served   # the next pass places the frames for these served sets
    return HindsightPlan(best.plan_placement.copy(), best.served.copy(), best.tx_time.copy(), best.cpu_hz.copy(),
                         res, shortfall(res), statuses, best.violations)
