"""The hindsight lower bound of a trace and the optimality gap of a policy (docs/model.md, section 6).

On one trace, every causal policy's energy is at least

    LB(mu) = sum_t g_t(mu) - sum_n mu_n eps_n R_n,     mu >= 0,

where ``g_t(mu)`` is the minimum of slot t's snapshot with migration relaxed (any placement, no
unavailability, no migration penalty) and ``failure_penalty = mu``, and ``R_n`` the requests of MU n.
Why: relax migration, then dualize each reliability constraint ``F_n <= eps_n R_n`` with ``mu_n``;
the Lagrangian separates over slots (weak duality). Every ``mu >= 0`` gives a valid bound provided
each ``g_t`` is exact or replaced by a certified lower bound, which is what we sum: the solver's
``bound``. In each slot only the requesting DTs are kept: the others cost nothing wherever they
sit, and dropping them (with the storage they need) is a further relaxation, exact whenever they
fit the room left, as in the default scenario. ``LB`` is concave in ``mu``; a supergradient is ``F_n(mu) - eps_n R_n`` with ``F_n(mu)``
the failures of the slot minimizers. We maximize it in two phases: first over *uniform*
multipliers ``mu = s 1`` (a concave function of one variable, bisected on the sign of its
supergradient ``F(s) - eps . R``: a policy that prices every failure alike solves exactly these slot
problems, so this phase finds the multipliers that match it), then per MU by projected supergradient
ascent with normalized, diminishing steps (``a_k = a_0 / sqrt(k + 1)``, ``a_0`` half the price level
reached), keeping the best value seen.

That climb is ``dual="supergradient"``. The default (``dual="columns"``, wdtnopt/bounds_columns.py)
bounds each ``g_t`` by its Lagrangian relaxation over CPU and storage prices and maximizes the
resulting concave function of ``(mu, lam, pi)`` by column generation over the whole trace: no MILP,
converged in a few passes (docs/longterm.md).

``g_t`` does not depend on ``eps``, so every evaluated ``mu`` is kept: the bound at any other
``eps`` is at least ``max_k G(mu_k) - mu_k . (eps R)``, which is how :func:`gap` evaluates the
bound at each policy's own failure ratios, then climbs further for that ``eps``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .errors import WdtnoptError
from .trace import Trace
from .wording import counted, sizes, verb


# per process: token of an evaluator -> its slots' warm-started solvers (solvers/exact.py, ExactWarmStart)
_SLOT_STATE: dict[str, dict[int, Any]] = {}
REFINE_WITHIN = 0.01   # refine a slot's price certificate when earlier points certify it within this


def _solve_slot(task: tuple[str, int, Any, np.ndarray, str, dict[str, Any], bool]
                ) -> tuple[float, np.ndarray, str, float, Any]:
    """One slot's relaxed minimum at multipliers ``mu`` (of its requesting DTs): (certified lower
    bound, failures of the incumbent, status, energy of the incumbent, a
    :class:`~wdtnopt.solvers.exact.PriceCertificate` of the slot or None).

    With ``warm`` the slot's solver state is kept in this process between dual steps (only the
    failure prices change, so the master's cuts, basis and last optimum stay useful).
    """
    from .snapshot import Snapshot
    from .solvers import solve

    token, slot, sub, mu, method, options, warm = task
    sub = Snapshot.from_dict(sub) if isinstance(sub, dict) else sub
    s = sub.replace(failure_penalty=mu)
    opts = options
    if warm and method == "exact":
        from .solvers.exact import ExactWarmStart
        state = _SLOT_STATE.setdefault(token, {})
        opts = {**options, "warm": state.setdefault(slot, ExactWarmStart())}
    sol = solve(s, method=method, **opts)
    failed = ~np.asarray(sol.served, dtype=bool)
    energy = float(sol.objective - mu[failed].sum()) if math.isfinite(sol.objective) else math.inf
    cert = opts["warm"].certificate if "warm" in opts else None
    return float(max(sol.bound, 0.0)), failed, sol.status, energy, cert


def relaxed_slot(trace: Trace, t: int, req: np.ndarray, base: dict[str, Any]) -> Any:
    """Slot ``t``'s relaxed snapshot of the hindsight bounds: its requesting DTs ``req`` only, no
    failure penalty, down servers' DTs free to move (``base``: placement and migration fields), on
    the limits ``evaluate`` accepts (:func:`~wdtnopt.solvers.tolerance.tolerant_snapshot`: deadline,
    CPU and power times ``1 + FEAS_RTOL``), so that its minimum bounds every decision a policy run
    gets accepted, knife-edge ones included (docs/longterm.md, "The hindsight lower bound").

    Parameters
    ----------
    trace : Trace
        The trace.
    t : int
        The slot.
    req : numpy.ndarray of int, shape [R]
        The slot's requesting MUs.
    base : dict
        ``placement_prev``, ``migrating``, ``migration_penalty`` and ``allow_migration`` of the
        relaxed snapshot.

    Returns
    -------
    Snapshot
        The relaxed, tolerant snapshot of the ``R`` requesting MUs.
    """
    from .solvers.tolerance import tolerant_snapshot

    sub = trace.snapshot(t, failure_penalty=np.zeros(trace.n_mus), hold_down_servers=False, **base)
    return tolerant_snapshot(sub.select(req))


def _drop_state(token: str) -> None:
    _SLOT_STATE.pop(token, None)


@dataclass
class BoundPoint:
    """One evaluated multiplier vector: ``G = sum_t g_t(mu)`` and the minimizers' failures."""

    mu: np.ndarray
    G: float
    failures: np.ndarray
    certified_all_optimal: bool
    slot_prices: tuple[np.ndarray, np.ndarray] | None = None   # column generation: (lam, pi) [slots, M]


@dataclass
class HindsightBound:
    """The hindsight lower bound of a trace (valid for every ``eps`` through :meth:`value_at`)."""

    trace_slots: int
    n_mus: int
    requests: np.ndarray                  # [N] requests per MU on the trace
    eps: np.ndarray                        # [N] the failure targets this bound was climbed for
    points: list[BoundPoint] = field(default_factory=list)
    method: str = "exact"
    forced_failures: np.ndarray | None = None   # [N] requests no policy can serve (see targets)

    def targets(self, eps: Any) -> np.ndarray:
        """[N] failures allowed at targets ``eps``: ``max(eps_n R_n, forced_n)``, with ``forced_n`` the
        requests of MU n no policy can serve (no up server meets the deadline). Every policy with
        ``F_n <= eps_n R_n`` also has ``F_n <= max(eps_n R_n, forced_n)``, so the bound at these
        targets is still below it; without the raise a MU with more forced failures than ``eps_n R_n``
        makes the dual unbounded (no policy meets eps, the bound is vacuous)."""
        t = self._per_mu(eps) * self.requests
        return t if self.forced_failures is None else np.maximum(t, self.forced_failures)

    def _per_mu(self, eps: Any) -> np.ndarray:
        """[N] ``eps`` (one number or one per MU, in [0, 1]), or an error naming it: the rule of
        :func:`hindsight_bound`'s ``eps`` (:func:`per_mu_eps`; a NaN had read as no point and a
        bound of 0, a boolean as 0 or 1)."""
        return per_mu_eps(eps, self.n_mus)

    def best_point(self, eps: Any) -> tuple[float, BoundPoint | None]:
        """The evaluated point with the largest ``LB`` at targets ``eps``, and that value (J);
        ``(-inf, None)`` before any evaluation."""
        target = self.targets(eps)
        best, point = -math.inf, None
        for p in self.points:
            v = p.G - float(p.mu @ target)
            if v > best:
                best, point = v, p
        return best, point

    def value_at(self, eps: Any) -> tuple[float, np.ndarray]:
        """Best certified total energy bound (J) over the evaluated multipliers at targets ``eps``
        (one number or one per MU, in [0, 1]; else a ``WdtnoptError`` naming ``eps``), and those
        multipliers ``mu [N]`` (J per failure; zeros where the bound is 0)."""
        best, point = self.best_point(eps)
        if point is None or best <= 0.0:   # energy >= 0 is itself a valid bound
            return 0.0, np.zeros(self.n_mus)
        return best, point.mu

    def tighten(self, eps: Any, iters: int = 10, *, failure_price: float = 0.0) -> float:
        """Spend ``iters`` more dual evaluations on targets ``eps`` and return the bound there (J).

        The points found are kept, so they also bound every other target (:meth:`value_at`). This
        is what :func:`gap` does for each policy at its own per-MU failure ratios: a bound climbed
        for ``eps = 0.05`` alone is loose at a policy that fails 1.5% of its requests.

        Parameters
        ----------
        eps : float or array_like of shape [N]
            Per-MU failure-ratio targets, in [0, 1].
        iters : int, optional
            Dual evaluations to spend (column generation: master passes with ``eps`` as the
            failure rows' right-hand side, its columns kept; supergradient: a uniform search, then
            per-MU ascent). ``0`` or a bound with no solver state left: none.
        failure_price : float, optional
            The scenario's failure price (J), where the supergradient search starts; unused by
            column generation.

        Returns
        -------
        float
            ``value_at(eps)[0]``, the best total energy bound (J) at ``eps``.

        Raises
        ------
        WdtnoptError
            If ``eps`` is not one number or N numbers in [0, 1], or ``iters`` is not an integer >= 0.
        """
        iters = check_iters(iters, 0)
        eps = self._per_mu(eps)
        ev = getattr(self, "_evaluator", None)
        cols = getattr(self, "_columns", None)
        if ev is not None and iters > 0:
            try:
                _maximize(ev, self, eps, int(iters), failure_price, 1e-4)
            finally:   # a Dask client the climb opened is not left open (the next climb reconnects)
                ev.pool.release_client()
        elif cols is not None and iters > 0 and cols.cd.slots:
            cols.run(self, eps, int(iters))
        return self.value_at(eps)[0]

    @property
    def total_energy(self) -> float:
        """The bound on the total MU energy of the trace (J) at ``self.eps``."""
        return self.value_at(self.eps)[0]

    @property
    def energy_per_mu_slot(self) -> float:
        """The bound in the unit of ``SimResult.energy_per_mu_slot`` (J per MU per slot)."""
        return self.total_energy / (self.n_mus * self.trace_slots)

    @property
    def mu(self) -> np.ndarray:
        return self.value_at(self.eps)[1]

    def history(self) -> list[float]:
        """Bound (J per MU per slot) at each evaluated multiplier, for this bound's ``eps``."""
        scale = self.n_mus * self.trace_slots
        target = self.targets(self.eps)
        return [max(p.G - float(p.mu @ target), 0.0) / scale for p in self.points]


class _Evaluator:
    """Evaluates G(mu) on a trace, slots in parallel, with the relaxed snapshots built once.

    With ``warm_start`` (the default) each slot keeps its solver between dual steps
    (:class:`wdtnopt.parallel.StickyPool` runs a slot always in the same process), and a slot is not
    solved at all when the points already evaluated certify its minimum to ``skip_rtol``
    (:meth:`_certified`); ``warm_start=False`` solves every slot from scratch at every step.
    """

    def __init__(self, trace: Trace, method: str, options: dict[str, Any], workers: int | None, scheduler: Any,
                 progress: bool, *, warm_start: bool = True, skip_rtol: float | None = None):
        import uuid
        import weakref

        from .parallel import StickyPool

        self.trace = trace
        self.method, self.options = method, options
        self.workers, self.scheduler, self.progress = workers, scheduler, progress
        self.warm = bool(warm_start)
        # a slot certified by earlier points to the gap the solver itself is asked for: the same
        # guarantee as a solve (its bound within that gap of the slot's minimum)
        self.skip_rtol = float(options.get("gap", 1e-6)) if skip_rtol is None else float(skip_rtol)
        n = trace.n_mus
        base = dict(placement_prev=trace.initial_placement, migrating=np.zeros(n, bool),
                    migration_penalty=np.zeros(n), allow_migration=True)
        self.slots = [t for t in range(trace.slots) if trace.request[t].any()]
        self.req = [np.flatnonzero(trace.request[t]) for t in self.slots]
        # only requesting DTs cost anything; dropping the others (and the room they need) relaxes the
        # slot problem further, so its minimum is still a lower bound (equal when storage has room).
        # With server failures: no CPU on a down server, DTs free to sit anywhere (docs/longterm.md)
        # on the limits evaluate accepts (deadline, CPU, power times 1 + FEAS_RTOL): a policy's
        # decisions meet them, not always the strict ones (docs/longterm.md, "The hindsight lower bound")
        subs = [relaxed_slot(trace, t, r, base) for t, r in zip(self.slots, self.req)]
        from .solvers.allocation import PairData
        self.forced = np.zeros(n)   # requests no policy can serve (HindsightBound.targets)
        for r, sub in zip(self.req, subs):
            self.forced[r] += ~PairData.of(sub).servable.any(axis=1)
        self.pool = StickyPool(workers, scheduler)
        # processes get plain dicts (small, picklable); in-process tasks keep the objects
        self.subs = subs if self.pool.in_process else [s.to_dict() for s in subs]
        self.token = uuid.uuid4().hex
        weakref.finalize(self, _drop_state, self.token)
        weakref.finalize(self, self.pool.close)
        # per slot: solved points (mu of its requesting DTs, certified bound) and decisions
        # (energy, failed mask) seen, for :meth:`_certified`
        self.solved: list[list[tuple[np.ndarray, float]]] = [[] for _ in self.slots]
        self.decisions: list[dict[bytes, tuple[float, np.ndarray]]] = [{} for _ in self.slots]
        self.certificates: list[list[Any]] = [[] for _ in self.slots]
        self.lagrangian: list[Any] = [None] * len(self.slots)   # per slot: (PairData, its Lagrangian data)
        self.refined = 0
        self.evaluations = 0
        self.solves = 0
        self.skipped = 0
        self.bar: Any = None

    def plan(self, evaluations: int) -> None:
        """Announce ``evaluations`` more dual steps (sizes the progress bar, so its ETA is for the run)."""
        if self.progress and self.bar is None:
            from .progress import progress_bar
            self.bar = progress_bar(desc="hindsight bound", unit="slot")
        if self.bar is not None:
            self.bar.total = (self.bar.total or 0) + evaluations * len(self.slots)
            self.bar.refresh()

    def _certified(self, i: int, mu: np.ndarray) -> tuple[float, np.ndarray] | None:
        """A certified lower bound of slot i's minimum at ``mu`` and a decision within ``skip_rtol``
        of it, from earlier points only; None when they do not certify it.

        Upper: every decision seen is feasible at any prices, so ``g(mu) <= E_D + mu . f_D``. Lower:
        the price certificates of the earlier solves (Lagrangian bounds valid at any ``mu``); and
        ``g`` is a minimum of functions affine and nondecreasing in ``mu``, hence concave and
        nondecreasing: ``g(mu) >= L_k`` for every solved point ``mu_k <= mu``, and on uniform prices
        ``g(s) >= ((b - s) L_a + (s - a) L_b) / (b - a)`` for solved ``a <= s <= b`` (with ``g(0) >= 0``).
        """
        if not self.warm or not self.decisions[i]:
            return None
        best_u, best_f = math.inf, None
        for e, f in self.decisions[i].values():
            u = e + float(mu[f].sum())
            if u < best_u:
                best_u, best_f = u, f
        lower = max([0.0] + [c.bound(mu) for c in self.certificates[i]])
        uniform = mu.size > 0 and float(np.ptp(mu)) == 0.0
        s = float(mu[0]) if uniform else 0.0
        a, la, b, lb = 0.0, 0.0, math.inf, 0.0
        for m_k, l_k in self.solved[i]:
            if (m_k <= mu).all():
                lower = max(lower, l_k)
            if uniform and float(np.ptp(m_k)) == 0.0:
                sk = float(m_k[0])
                if a < sk <= s:
                    a, la = sk, l_k
                if s <= sk < b:
                    b, lb = sk, l_k
        if uniform and math.isfinite(b) and b > a:
            lower = max(lower, ((b - s) * la + (s - a) * lb) / (b - a))
        if best_f is None or not math.isfinite(best_u):
            return None
        if best_u - lower > self.skip_rtol * abs(best_u) and self.certificates[i] and best_u - lower < REFINE_WITHIN * abs(best_u):
            # close: climb the best certificate's CPU and storage prices at these failure prices
            lower = max(lower, self._refine(i, mu, best_u))
        if best_u - lower > self.skip_rtol * abs(best_u):
            return None
        return lower, best_f

    def _refine(self, i: int, mu: np.ndarray, target: float) -> float:
        """Slot i's best price certificate refined at ``mu`` (solvers/price_certificate.py); its bound."""
        from .snapshot import Snapshot
        from .solvers.allocation import PairData
        from .solvers.price_certificate import _never_failing, refine

        if self.lagrangian[i] is None:
            sub = self.subs[i]
            pd = PairData.of(Snapshot.from_dict(sub) if isinstance(sub, dict) else sub)
            self.lagrangian[i] = (pd, _never_failing(pd))
        pd, never = self.lagrangian[i]
        certs = self.certificates[i]
        start = max(certs, key=lambda c: c.bound(mu))
        cert = refine(pd, start, mu, target, never=never)
        if cert is not start:
            certs.append(cert)
            self.refined += 1
        return cert.bound(mu)

    def __call__(self, mu: np.ndarray) -> BoundPoint:
        n = self.trace.n_mus
        if self.bar is not None:
            self.bar.set_postfix_str(f"dual step {self.evaluations + 1}")
        values = np.zeros(len(self.slots))
        failures = np.zeros(n)
        all_optimal = True
        todo = []
        for i, r in enumerate(self.req):
            mu_i = mu[r]
            got = self._certified(i, mu_i)
            if got is not None:
                values[i] = got[0]
                failures[r] += got[1]
                self.skipped += 1
            else:
                todo.append(i)
        if self.bar is not None and len(todo) < len(self.slots):
            self.bar.update(len(self.slots) - len(todo))
        tasks = [(i % self.pool.size, (self.token, i, self.subs[i], mu[self.req[i]].copy(), self.method, self.options,
                                       self.warm)) for i in todo]
        out = self.pool.map(_solve_slot, tasks, on_result=(lambda j, r: self.bar.update(1)) if self.bar is not None else None)
        for i, (lb, failed, status, energy, cert) in zip(todo, out):
            values[i] = lb
            if cert is not None and self.warm:
                self.certificates[i].append(cert)
            failures[self.req[i]] += failed
            all_optimal &= status == "optimal"
            if self.warm:
                self.solved[i].append((mu[self.req[i]].copy(), lb))
                key = np.packbits(failed).tobytes()
                old = self.decisions[i].get(key)
                if math.isfinite(energy) and (old is None or energy < old[0]):
                    self.decisions[i][key] = (energy, failed)
        self.solves += len(todo)
        self.evaluations += 1
        return BoundPoint(mu=mu.copy(), G=float(values.sum()), failures=failures, certified_all_optimal=all_optimal)

    def close(self) -> None:
        """End of a climb: close the progress bar and a Dask client the pool opened itself (kept
        open, it held a connection to the scheduler for the life of the bound); local worker
        processes stay, they hold the slots' warm solver state for a later :meth:`HindsightBound.tighten`."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.pool.release_client()


def _climb(ev: _Evaluator, hb: HindsightBound, eps: np.ndarray, start: BoundPoint | np.ndarray, iters: int,
           step0: float, tol: float) -> None:
    """Projected supergradient ascent on LB(mu) at targets eps, appending every new point to hb.

    ``start``: multipliers to evaluate first, or a point already evaluated (not counted in ``iters``).
    """
    target = hb.targets(eps)
    p = start if isinstance(start, BoundPoint) else None
    mu = p.mu.copy() if p is not None else np.maximum(np.asarray(start, float), 0.0)
    best = -math.inf
    stall = 0
    for k in range(iters + (p is not None)):
        if p is None:
            p = ev(mu)
            hb.points.append(p)
        value = p.G - float(mu @ target)
        if best == -math.inf or value > best + tol * abs(best):
            best, stall = value, 0
        else:
            stall += 1
        g = p.failures - target                      # supergradient of LB at mu
        g = np.where((mu <= 0) & (g < 0), 0.0, g)    # projected: no descent below zero
        norm = np.abs(g).max()
        if norm == 0 or stall >= 5:
            break
        mu = np.maximum(mu + step0 / math.sqrt(k + 1) * g / norm, 0.0)
        p = None


def _uniform_points(hb: HindsightBound) -> list[BoundPoint]:
    return [p for p in hb.points if p.mu.size and float(np.ptp(p.mu)) == 0.0]


def _uniform_search(ev: _Evaluator, hb: HindsightBound, eps: np.ndarray, evals: int, start: float,
                    rtol: float = 0.02) -> int:
    """Maximize the one-dimensional concave ``phi(s) = LB(s * 1)`` at targets ``eps``; returns the
    evaluations spent.

    ``F(s) - eps . R`` is a supergradient of ``phi`` at ``s``, with ``F(s)`` the total failures of the
    slot minimizers at the uniform price ``s``: positive means the maximizer lies above ``s``, so
    bisection (geometric once bracketed) on its sign finds it. Uniform points already kept in ``hb``
    (from any earlier target) narrow the bracket for free, so a second policy's search often costs
    few evaluations. Every evaluated point is appended to ``hb``.
    """
    target = float(hb.targets(eps).sum())
    lo, hi = 0.0, math.inf
    for p in _uniform_points(hb):
        s, f = float(p.mu[0]), float(p.failures.sum())
        if f > target:
            lo = max(lo, s)
        else:
            hi = min(hi, s)
    spent = 0
    while spent < evals and not (math.isfinite(hi) and hi - lo <= rtol * hi):
        if not math.isfinite(hi):
            s = max(2.0 * lo, start)
        elif lo <= 0.0:
            s = start if start < hi else hi / 2.0
        else:
            s = math.sqrt(lo * hi)
        p = ev(np.full(hb.n_mus, s))
        hb.points.append(p)
        spent += 1
        if float(p.failures.sum()) > target:
            lo = s
        else:
            hi = s
    return spent


def _maximize(ev: _Evaluator, hb: HindsightBound, eps: np.ndarray, iters: int, start: float, tol: float) -> None:
    """Improve ``LB`` at targets ``eps`` with ``iters`` evaluations in two phases: a search over
    uniform multipliers (at most half of them), then per-MU projected supergradient ascent from the
    best point kept, with steps scaled to that point's price level."""
    spent = _uniform_search(ev, hb, eps, max(1, iters // 2), start)
    _, best = hb.best_point(eps)
    if best is None or iters - spent <= 0:
        return
    level = float(best.mu.max()) if best.mu.any() else start
    _climb(ev, hb, eps, best, iters - spent, 0.5 * level, tol)


def _columns_bound(trace: Trace, eps: np.ndarray, iters: int, price: float, progress: bool) -> HindsightBound:
    """:func:`hindsight_bound` by column generation (wdtnopt/bounds_columns.py)."""
    from .bounds_columns import ColumnDual

    cd = ColumnDual(trace, price, progress)
    hb = HindsightBound(trace_slots=trace.slots, n_mus=trace.n_mus, requests=trace.request.sum(axis=0).astype(float),
                        eps=eps, method="columns", forced_failures=cd.forced)
    hb._columns = _ColumnsState(cd, progress)  # type: ignore[attr-defined]
    if not cd.slots:   # no request: nothing to spend, nothing to fail
        hb.points.append(BoundPoint(mu=np.zeros(trace.n_mus), G=0.0, failures=np.zeros(trace.n_mus),
                                    certified_all_optimal=True))
        return hb
    hb._columns.run(hb, eps, iters)  # type: ignore[attr-defined]
    return hb


class _ColumnsState:
    """The column-generation dual of a bound, kept for :func:`gap` (more targets) and its progress bar."""

    def __init__(self, cd: Any, progress: bool):
        self.cd, self.progress = cd, progress

    def run(self, hb: HindsightBound, eps: np.ndarray, iters: int) -> int:
        from .bounds_columns import maximize

        bar = None
        if self.progress:
            from .progress import progress_bar
            bar = progress_bar(desc="hindsight bound", unit="slot", total=iters * len(self.cd.slots))
        try:
            spent = maximize(self.cd, hb, eps, iters, bar)
        finally:
            if bar is not None:
                bar.close()
        return spent


COLUMNS_SLOT_BYTES = (2 * 2**20, 250)
"""Over-estimate of the column-generation bound's memory per slot: ``a + b N M^2`` bytes (its
pricing data and the columns kept for the slot). Peaks measured beyond the trace (process RSS, 20
dual evaluations unless said): 30 MiB per slot at N = 400, M = 20 (about 180 B x N M^2), 43 MiB at
N = 200, M = 50 (86 B); at 2 evaluations 10 MiB at N = 1,000, M = 10 (92 B), 5.3 MiB at N = 100,
M = 20, 1.5 MiB at N = 100, M = 5 (docs/longterm.md, "Memory of the bound")."""


SUPERGRADIENT_SLOT_BYTES = (4 * 2**20, 2048)
"""Over-estimate of the supergradient dual's memory per slot with the default inner method
``"exact"``: ``a + b N^2 M`` bytes. Each slot keeps its warm-started master (solvers/exact.py,
``ExactWarmStart``) across the dual steps, and its cuts grow with the slot's difficulty, which grows
with N at a given M. Peaks measured beyond the trace (process RSS, ``workers=1``, 20 dual steps):
2.1 MiB per slot at N = 30, M = 5 (10 slots; 1.9 MiB with 20 slots), 7.5 MiB at N = 60, M = 5,
2.7 MiB at N = 40, M = 12; at N = 100, M = 5 (4 slots) the whole process held 257 MiB after 11
CPU-minutes, unfinished (docs/longterm.md, "Memory of the bound")."""
SUPERGRADIENT_FAST_SLOT_BYTES = (2 * 2**20, 128, 32 * 2**20, 4096)
"""The same with the inner method ``"fast"`` (no solver kept between dual steps): ``a + b N M`` bytes
per slot (the slot's snapshot and its decisions) and ``c + d N M`` once per process (the working
memory of one solve: pair data, restricted-master MILP). Measured (5 dual steps, RSS before the call
to the peak): 32.4 MiB at N = 500, M = 5, 4 slots; 41.9 and 53.5 MiB in two runs at N = 1,000, M =
20, 3 slots (estimates 51 and 123 MiB)."""
SUPERGRADIENT_WORKER_BYTES = 64 * 2**20
"""Each worker process of the supergradient dual when it runs in several (``workers`` > 1): the
interpreter, numpy and HiGHS (46 MiB measured after the imports and one solve)."""


def bound_memory_bytes(n_mus: int, n_bss: int, slots: int, *, dual: str = "columns", method: str = "exact",
                       workers: int = 1) -> int:
    """Over-estimate (bytes) of the hindsight bound's peak memory beyond the trace itself.

    Parameters
    ----------
    n_mus, n_bss, slots : int
        The trace's N, M and T.
    dual : {"columns", "supergradient"}, optional
        The dual method (``hindsight_bound``'s ``dual`` once ``"auto"`` has chosen).
    method : str, optional
        The supergradient dual's inner snapshot method (``"fast"``: ``SUPERGRADIENT_FAST_SLOT_BYTES``).
    workers : int, optional
        Local worker processes of the supergradient dual (1: this process).

    Returns
    -------
    int
        Columns: ``T (a + b N M^2)`` with ``(a, b) = COLUMNS_SLOT_BYTES``, 1.4-4x the measured peaks
        (the most at small N, M). Supergradient: ``T (a + b N^2 M)`` with ``(a, b) =
        SUPERGRADIENT_SLOT_BYTES``, 5-16x the measured peaks (``method="fast"``: ``T (a + b N M) + c + d N M``
        with ``SUPERGRADIENT_FAST_SLOT_BYTES``, 1.6-2.9x), plus ``SUPERGRADIENT_WORKER_BYTES`` per
        worker process when ``workers`` > 1.
    """
    n, m, t = int(n_mus), int(n_bss), int(slots)
    if dual == "supergradient":
        workers_bytes = SUPERGRADIENT_WORKER_BYTES * int(workers) if workers > 1 else 0
        if method == "fast":
            a, b, c, d = SUPERGRADIENT_FAST_SLOT_BYTES
            return t * (a + b * n * m) + (c + d * n * m) * max(int(workers), 1) + workers_bytes
        a, b = SUPERGRADIENT_SLOT_BYTES
        return t * (a + b * n * n * m) + workers_bytes
    a, b = COLUMNS_SLOT_BYTES
    return t * (a + b * n * m ** 2)


def check_bound_fits(n_mus: int, n_bss: int, slots: int, *, dual: str = "columns", method: str = "exact",
                     workers: int = 1) -> None:
    """Refuse a hindsight bound that cannot fit in memory, before building it (arguments as
    :func:`bound_memory_bytes`).

    Raises
    ------
    WdtnoptError
        One line with the estimate, the memory available and the most slots that would fit (or,
        when not even one does, that fewer MUs or BSs are needed).
    """
    from .trace import (NO_SLOT_FITS, NO_SLOT_FITS_ADVICE, WORKERS_ADVICE, available_memory_bytes,
                        check_memory_fits, n_slots)

    have = available_memory_bytes()
    need = bound_memory_bytes(n_mus, n_bss, slots, dual=dual, method=method, workers=workers)
    if have is None or need <= have:
        return
    base = bound_memory_bytes(n_mus, n_bss, 0, dual=dual, method=method, workers=workers)
    fit = max(have - base, 0) // (bound_memory_bytes(n_mus, n_bss, 1, dual=dual, method=method, workers=workers) - base)
    change = (f"at most {n_slots(fit)} {verb(fit, 'fits', 'fit')} (--slots)" if fit >= 1
              else NO_SLOT_FITS_ADVICE)
    if fit < 1 and dual == "supergradient" and workers > 1:   # the workers' part alone is too much
        def fits(w: int, t: int) -> bool:
            return bound_memory_bytes(n_mus, n_bss, t, dual=dual, method=method, workers=w) <= have

        for t in (slots, 1):   # the most workers that fit every slot, else one slot
            lo, hi = 0, int(workers) - 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if fits(mid, t) else (lo, mid - 1)
            if lo >= 1 and fits(lo, t):
                change = f"{NO_SLOT_FITS} with {int(workers):,} worker processes: use at most {lo:,} {WORKERS_ADVICE}"
                break
    name = "the hindsight bound" if dual == "columns" else "the supergradient hindsight bound"
    check_memory_fits(need, f"{name} of {sizes(slots, n_mus, n_bss)}",
                      change, have=have)


def eps_targets(trace: Trace, eps: Any) -> np.ndarray:
    """[N] failure-ratio targets: ``eps`` (one number or one per MU, in [0, 1]), None = the scenario's.

    Raises
    ------
    WdtnoptError
        If ``eps`` is not one number or N numbers, all finite and in [0, 1].
    """
    return per_mu_eps(trace.scenario.eps if eps is None else eps, trace.n_mus)


def per_mu_eps(eps: Any, n: int) -> np.ndarray:
    """[N] copy of ``eps`` (one number or ``n`` numbers, finite, in [0, 1]); else a ``WdtnoptError``
    naming ``eps``. A bool, or a sequence holding one, is refused (True read as eps = 1, a bound of 0)."""
    from .fieldtypes import holds_bool

    try:
        arr = None if holds_bool(eps) else np.broadcast_to(np.asarray(eps, dtype=float), (n,)).copy()
    except (TypeError, ValueError):
        arr = None
    if arr is None or not (np.isfinite(arr).all() and (arr >= 0).all() and (arr <= 1).all()):
        raise WdtnoptError(f"eps: expected a number or {n} numbers in [0, 1], got {eps!r}")
    return arr


def check_iters(iters: Any, at_least: int) -> int:
    """``iters`` as an int: an integer (Python's or numpy's, not a bool) ``>= at_least``; else a
    ``WdtnoptError`` naming ``iters`` (the dual steps of the bounds' entry points)."""
    if not isinstance(iters, (int, np.integer)) or isinstance(iters, bool) or iters < at_least:
        raise WdtnoptError(f"iters: expected an integer >= {at_least}, got {iters!r}")
    return int(iters)


FAST_INNER_OPTIONS: dict[str, Any] = {"exact_pairs": 0, "extra_rounds": 0, "search_starts": 0}
"""``method="fast"``'s options as the supergradient bound's inner method, unless ``solver_options``
say otherwise: no continuation in exact's branch and bound (on a small slot, up to ``exact_time``
= 9.5 s), no extra primal rounds after the dual converged and no local searches from the MILP's
other incumbents. The bound sums each slot's certified dual bound, which these leave as it is
(the continuation would raise it by the slot's integrality gap, a few 1e-4); only the decision,
whose failures steer the climb, is polished less (docs/longterm.md, "The inner method")."""


def hindsight_bound(trace: Trace, eps: Any = None, *, iters: int = 20, mu0: Any = None, method: str = "exact",
                    solver_options: dict[str, Any] | None = None, workers: int | None = 1, scheduler: Any = None,
                    step: float | None = None, tol: float = 1e-4, progress: bool = False,
                    warm_start: bool = True, dual: str = "auto") -> HindsightBound:
    """Lower bound on the energy of every causal policy on ``trace`` whose per-MU failure ratios are <= ``eps``.

    The Lagrangian hindsight bound of docs/model.md, section 6: migration relaxed, reliability dualized
    with per-MU multipliers ``mu >= 0`` (J per failure); every evaluated ``mu`` is a valid bound.

    Parameters
    ----------
    trace : Trace
        The trace (T slots, N MUs).
    eps : float or array_like, shape [N], optional
        Target failure ratio of every MU, in ``[0, 1]`` (default: the scenario's ``eps``).
    iters : int, optional
        Dual evaluations (each solves every slot with requests once): up to half of them search the
        uniform multipliers, the rest climb per MU; with ``mu0`` or ``step`` given, all of them
        climb from ``mu0``.
    mu0 : float or array_like, shape [N], optional
        Starting multipliers (J), default ``eta * E_ref``.
    method : str, optional
        Snapshot method of the inner minima (``"exact"``; ``"fast"`` for large N; both certified).
    solver_options : dict, optional
        Options of that method (default relative gap 1e-3: certified inner bounds; with ``"fast"``
        also :data:`FAST_INNER_OPTIONS`, no continuation in exact).
    workers, scheduler
        See :class:`wdtnopt.parallel.StickyPool` (each slot is solved in the same process at every
        dual step).
    step : float, optional
        Step of the per-MU ascent.
    tol : float, optional
        Relative improvement below which the ascent stops.
    progress : bool, optional
        Show a progress bar (with the ETA of the whole run).
    warm_start : bool, optional
        Keep each slot's solver between dual steps and skip slots that earlier points already
        certify to the inner gap (docs/longterm.md); ``False`` solves every slot from scratch at
        every step.
    dual : {"auto", "columns", "supergradient"}, optional
        How the dual is maximized (docs/longterm.md). ``"columns"``: column generation over the whole
        trace (wdtnopt/bounds_columns.py), each slot bounded by its Lagrangian relaxation at the
        master's CPU and storage prices (no MILP; ``method``, ``solver_options`` and ``workers`` are
        not used; a ``scheduler``, ``mu0``, ``step`` or ``warm_start=False`` is refused, and so is a
        semantic compression menu of two or more levels), each of the ``iters`` evaluations one
        pricing pass over every slot; it stops early once converged. ``"supergradient"``: the
        uniform search and per-MU ascent over slot minima solved by ``method`` (on ``workers``
        processes or the ``scheduler``'s cluster). ``"auto"`` (default): columns, except with
        ``mu0``, ``step``, ``warm_start=False``, a ``scheduler`` or semantic compression levels.

    Returns
    -------
    HindsightBound
        ``energy_per_mu_slot`` (J, a valid lower bound in the unit of
        ``SimResult.energy_per_mu_slot``), the best multipliers ``mu [N]`` (J per failure) and every
        evaluated dual point (``value_at(eps)`` re-scores them at other failure targets).

    Raises
    ------
    WdtnoptError
        If ``trace`` is not a Trace, ``eps`` is not in ``[0, 1]`` (or not N values), ``iters`` is not
        an integer >= 1 (a numpy integer is one, a bool is not), ``progress`` is not a bool,
        ``mu0`` is negative, not finite or not N values, ``step`` is not > 0, or ``dual="columns"`` is
        given with ``mu0``, ``step``, ``warm_start=False`` or a ``scheduler`` (options of the
        supergradient climb only); solver errors of ``method`` propagate.
    """
    if not isinstance(trace, Trace):
        raise WdtnoptError(f"trace: expected a wdtnopt.Trace (generate_trace), got {type(trace).__name__}")
    n = trace.n_mus
    eps_arr = eps_targets(trace, eps)
    iters = check_iters(iters, 1)
    if not isinstance(progress, (bool, np.bool_)):   # 'no' or '0' turned the bars on
        raise WdtnoptError(f"progress: expected True or False, got {progress!r}")
    if dual not in ("auto", "columns", "supergradient"):
        raise WdtnoptError(f"dual: expected 'auto', 'columns' or 'supergradient', got {dual!r}")
    from .solvers import methods
    if method not in methods():   # checked whichever dual runs: a typo is not silently unused
        raise WdtnoptError(f"method: expected one of {', '.join(methods())}, got {method!r}")
    from . import bounds_columns
    if dual == "columns" and not bounds_columns.covers(trace):
        raise WdtnoptError("dual: 'columns' does not cover semantic compression levels (use 'supergradient')")
    if dual == "columns":
        unused = [name for name, v in (("mu0", mu0), ("step", step)) if v is not None]
        unused += ["warm_start=False"] if not warm_start else []
        if unused:
            raise WdtnoptError(f"dual: 'columns' takes its prices from its own master; {', '.join(unused)} "
                               "only apply to dual='supergradient' (or leave dual='auto')")
        if scheduler is not None:
            raise WdtnoptError("scheduler: the 'columns' dual runs in this process (one LP and a vectorized pricing "
                               "per step, no slot solves to distribute); use dual='supergradient' to solve the "
                               "slots on a Dask cluster (or leave dual='auto')")
    # a scheduler asks for the slots to be solved on a cluster: only the supergradient climb has slot solves
    use_columns = dual == "columns" or (dual == "auto" and mu0 is None and step is None and warm_start
                                        and scheduler is None and bounds_columns.covers(trace))
    price = trace.scenario.failure_price
    if use_columns:
        check_bound_fits(trace.n_mus, trace.n_bss, trace.slots)
        return _columns_bound(trace, eps_arr, iters, price, progress)
    try:
        mu_start = np.full(n, price) if mu0 is None else np.broadcast_to(np.asarray(mu0, float), (n,)).copy()
    except (TypeError, ValueError):
        mu_start = None
    if mu_start is None or not (np.isfinite(mu_start).all() and (mu_start >= 0).all()):
        raise WdtnoptError(f"mu0: expected one or {n} finite multipliers >= 0 (J per failure), got {mu0!r}")
    if step is not None and not (isinstance(step, (int, float)) and math.isfinite(step) and step > 0):
        raise WdtnoptError(f"step: expected a finite number > 0 (J per failure) or None, got {step!r}")
    if scheduler is None:   # (on a cluster the slots' state lives in its workers)
        from .parallel import StickyPool
        check_bound_fits(n, trace.n_bss, trace.slots, dual="supergradient", method=method,
                         workers=StickyPool(workers).size)
    # the inner minima only need certified lower bounds: a 1e-3 relative gap loses at most 0.1% of
    # the bound and saves most of the branching
    fast_inner = dict(FAST_INNER_OPTIONS)
    if getattr(trace.scenario, "semantic_levels", 0) >= 2:
        # fast's level path has no search from other starts and refuses the option by name
        # (docs/solvers.md, "Semantic levels"): it does what search_starts=0 asks anyway
        fast_inner.pop("search_starts")
    inner = {"gap": 1e-3, **(fast_inner if method == "fast" else {}), **(solver_options or {})}
    ev = _Evaluator(trace, method, inner, workers, scheduler, progress, warm_start=warm_start)
    hb = HindsightBound(trace_slots=trace.slots, n_mus=n, requests=trace.request.sum(axis=0).astype(float),
                        eps=eps_arr, method=method, forced_failures=ev.forced)
    ev.plan(iters)
    try:
        if mu0 is None and step is None:
            _maximize(ev, hb, eps_arr, iters, price, tol)
        else:
            _climb(ev, hb, eps_arr, mu_start, iters, price if step is None else step, tol)
    finally:
        ev.close()
    hb._evaluator = ev  # type: ignore[attr-defined]  # reused by gap() to climb further
    return hb


@dataclass
class GapRow:
    policy: str
    energy_per_mu_slot: float
    failure_ratio: float
    bound_per_mu_slot: float
    gap: float                 # (E_policy - LB) / LB; inf when LB = 0 < E_policy

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class GapReport:
    rows: list[GapRow]

    def table(self) -> Any:
        from rich.table import Table
        t = Table()
        for c in ("policy", "energy / MU / slot (mJ)", "failure ratio", "hindsight bound (mJ)", "gap"):
            # a long policy name folds onto more lines instead of being cut to "pretrained…"
            t.add_column(c, **({"justify": "left", "overflow": "fold"} if c == "policy" else {"justify": "right"}))
        for r in self.rows:
            t.add_row(r.policy, f"{r.energy_per_mu_slot * 1e3:.4f}", f"{r.failure_ratio:.4f}",
                      f"{r.bound_per_mu_slot * 1e3:.4f}", "inf" if math.isinf(r.gap) else f"{100 * r.gap:.1f}%")
        return t

    def to_markdown(self) -> str:
        lines = ["| policy | energy / MU / slot (mJ) | failure ratio | hindsight bound (mJ) | gap |", "|---|---|---|---|---|"]
        for r in self.rows:
            g = "inf" if math.isinf(r.gap) else f"{100 * r.gap:.1f}%"
            name = str(r.policy).replace("|", "\\|")   # a '|' in a checkpoint's folder split the row
            lines.append(f"| {name} | {r.energy_per_mu_slot * 1e3:.4f} | {r.failure_ratio:.4f} | "
                         f"{r.bound_per_mu_slot * 1e3:.4f} | {g} |")
        return "\n".join(lines)


def _bound_of(bound: Any, trace: Trace) -> bool:
    """Whether ``bound`` was computed on ``trace`` (the same object, or a trace of the same scenario,
    seed and slots, with the same requests)."""
    if getattr(bound, "n_mus", None) != trace.n_mus or getattr(bound, "trace_slots", None) != trace.slots:
        return False
    if not np.array_equal(np.asarray(getattr(bound, "requests", [])), trace.request.sum(axis=0)):
        return False
    cols = getattr(bound, "_columns", None)
    own = getattr(cols.cd if cols is not None else getattr(bound, "_evaluator", None), "trace", None)
    return own is None or own is trace or (own.seed == trace.seed and own.scenario == trace.scenario)


def gap(results: Any, trace: Trace, bound: HindsightBound | None = None, *, iters: int = 10,
        **bound_options: Any) -> GapReport:
    """Optimality gap of simulated policies on ``trace``: ``(E_policy - LB) / LB`` (docs/model.md, section 6).

    ``LB`` is the hindsight bound evaluated at each policy's *own* per-MU failure ratios (so a
    policy cannot look good by failing more).

    Parameters
    ----------
    results : SimResult or list of SimResult
        Runs on ``trace`` (same N and number of slots).
    trace : Trace
        The trace the policies ran on.
    bound : HindsightBound, optional
        A bound computed earlier on the same trace, reused (its dual points are kept).
    iters : int, optional
        Dual evaluations per policy that target its failure ratios (uniform search, then per-MU
        ascent; uniform points are shared between policies, so later policies often need fewer);
        also the bound's own budget when ``bound`` is None. ``0``: none per policy (each is scored
        on the points there are; without ``bound``, one is computed with ``hindsight_bound``'s
        default budget).
    **bound_options
        Passed to :func:`hindsight_bound` when ``bound`` is None.

    Returns
    -------
    GapReport
        ``rows``, one per policy: ``energy_per_mu_slot`` (J), ``failure_ratio``,
        ``bound_per_mu_slot`` (J, the bound at its own failure ratios) and the relative ``gap``.

    Raises
    ------
    WdtnoptError
        If a result is not a SimResult or is of another trace (other N, number of slots or seed),
        ``bound`` was computed on another trace, or ``iters`` is not an integer >= 0.
    """
    res_list: Sequence[Any] = results if isinstance(results, (list, tuple)) else [results]
    iters = check_iters(iters, 0)
    for r in res_list:   # before the bound's work: a result of another trace has no gap to this one's bound
        if not all(hasattr(r, a) for a in ("failure_ratio_per_mu", "energy_per_mu_slot", "n_mus", "slots", "seed")):
            raise WdtnoptError(f"gap: results: expected SimResult objects (wdtnopt.simulate), got {type(r).__name__}")
        if r.n_mus != trace.n_mus or r.slots != trace.slots or r.seed != trace.seed:
            raise WdtnoptError(f"gap: result {r.policy!r} is of another trace ({counted(r.n_mus, 'MU')} x "
                               f"{counted(r.slots, 'slot')}, "
                               f"seed {r.seed}; the trace: {trace.n_mus} x {trace.slots}, seed {trace.seed})")
    if bound is not None and not _bound_of(bound, trace):
        # another trace's bound (same sizes) scored the policies against the wrong slots: gaps below 0
        raise WdtnoptError("gap: bound: expected a hindsight bound computed on this trace (hindsight_bound(trace))")
    if bound is None:
        # iters=0 asks for no climb per policy; the bound itself still needs its own evaluations
        bound = hindsight_bound(trace, **({"iters": iters} if iters > 0 else {}), **bound_options)
    ev = getattr(bound, "_evaluator", None)
    if ev is not None and iters > 0:
        ev.plan(iters * len(res_list))
    for r in res_list:
        bound.tighten(r.failure_ratio_per_mu, iters, failure_price=trace.scenario.failure_price)
    # every dual point bounds every policy at its own targets: each row takes the best of all the
    # points, those found for the policies after it included (the order of `results` does not matter)
    rows = []
    for r in res_list:
        lb, _ = bound.value_at(r.failure_ratio_per_mu)
        lb_slot = lb / (trace.n_mus * trace.slots)
        e = r.energy_per_mu_slot
        g = (e - lb_slot) / lb_slot if lb_slot > 0 else (0.0 if e <= 0 else math.inf)
        rows.append(GapRow(r.policy, e, r.failure_ratio, lb_slot, g))
    if ev is not None:
        ev.close()
    return GapReport(rows)
