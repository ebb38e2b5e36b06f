"""The Lyapunov drift-plus-penalty scheduler and the myopic oracle (docs/model.md, section 6).

Both solve a snapshot problem at every decision point with the project's own solvers:

* at a frame start, the placement problem (``allow_migration=True``), each move priced by the
  failures it is expected to cause while the DT is unavailable (the Lyapunov scheduler solves it
  for the frame's expected load, ``placement="frame"``; docs/longterm.md);
* every slot, the exact admission and power/CPU allocation at the fixed placement.

They differ only in the failure price. The **myopic oracle** uses the fixed price of the team
reward, ``eta * E_ref``: the one-slot optimum of the RL agents' own objective. The **Lyapunov
scheduler** keeps a virtual queue per MU, ``Q_n <- max(Q_n + req_n (fail_n - eps), 0)``, and
prices a failure at ``Q_n / V`` (minimizing ``V energy + sum_n Q_n fail_n``): a MU that has failed
more than ``eps`` of the time becomes expensive to fail again, so each MU's long-run failure ratio
is driven to ``eps`` or below, and a larger ``V`` buys lower energy with a larger backlog.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..cost import Decision, Evaluation
from ..errors import WdtnoptError
from ..fieldtypes import holds_bool, is_bool, is_finite_number
from ..snapshot import Snapshot
from . import Policy


# spawn key of placement="sample"'s own stream, a child of the trace's seed (trace streams use 0 .. 5)
SAMPLE_STREAM_KEY = 0x53414D50


class SnapshotSolverPolicy(Policy):
    """Placement and allocation by the snapshot solver, for a failure price set by subclasses.

    Parameters
    ----------
    method : str, optional
        ``"auto"`` (``exact`` up to ``exact_max_mus`` MUs, ``fast`` beyond), or any method of
        :func:`wdtnopt.solve`.
    exact_max_mus : int, optional
        Largest N solved by ``exact`` under ``"auto"``.
    solver_options : dict, optional
        Options of every solve call (e.g. ``gap``, ``time_limit`` in s). ``fast`` is called with
        ``exact_pairs=0`` unless given here: a per-slot policy keeps fast's own decision rather
        than continuing in exact's branch and bound for up to ``exact_time`` s a slot
        (docs/solvers_fast.md).
    placement : {"slot", "frame", "sample"}, optional
        What the frame-start placement is solved for (docs/longterm.md, "Placement for the frame").
        ``"slot"``: the snapshot of the frame's first slot (only its requesting DTs count, a move
        priced against that one slot). ``"frame"``: the frame's expected load, every available DT
        counted as requesting on servers of ``cpu_hz / request_prob``, a move's penalty spread over
        the frame's ``K`` slots (the same as ``"slot"`` when ``K = 1``). ``"sample"``: the
        ``"frame"`` plans at each CPU share of ``sample_shares`` and the current placement, of which
        the one of least sample-average cost over ``placement_samples`` drawn slots is kept
        (:meth:`sample_placement`; the same as ``"slot"`` when ``K = 1``).
    frame_cpu_share : float, optional
        Share of each server's CPU the ``"frame"`` placement plans with, in (0, 1]: servers of
        ``frame_cpu_share * cpu_hz / request_prob``. Below 1 the plan keeps headroom for the slots
        where more of a server's DTs request than on average (docs/longterm.md, "Placement for the
        frame"); 1 (the default) is the fluid load. Unused with ``placement="slot"``; must be 1 with
        ``"sample"`` (whose shares are ``sample_shares``).
    placement_samples : int, optional
        ``S >= 1``, slots drawn at each frame start by ``placement="sample"`` (unused otherwise).
    sample_shares : sequence of float, optional
        CPU shares, each in (0, 1] and distinct, of the ``"frame"`` plans ``placement="sample"``
        chooses among (with the current placement); default ``(1.0, 0.8)``.

    Raises
    ------
    WdtnoptError
        If ``exact_max_mus`` is not an integer >= 0 (a bool is not one), ``placement`` is not ``"slot"``, ``"frame"`` or
        ``"sample"``, ``frame_cpu_share`` is not a number in (0, 1] (or not 1 with ``"sample"``),
        ``placement_samples`` is not an integer >= 1, ``sample_shares`` is not a non-empty sequence
        of distinct numbers in (0, 1], or ``method`` is neither ``"auto"`` nor a method of
        :func:`wdtnopt.solve` (checked when the policy is built, not at its first solve).
    """

    name = "snapshot-solver"
    PLACEMENTS = ("slot", "frame", "sample")

    def __init__(self, *, method: str = "auto", exact_max_mus: int = 60, solver_options: dict[str, Any] | None = None,
                 placement: str = "slot", frame_cpu_share: float = 1.0, placement_samples: int = 4,
                 sample_shares: Any = (1.0, 0.8)):
        if not isinstance(exact_max_mus, int) or is_bool(exact_max_mus) or exact_max_mus < 0:
            raise WdtnoptError(f"exact_max_mus: expected an integer >= 0, got {exact_max_mus!r}")
        if not isinstance(placement, str) or placement not in self.PLACEMENTS:
            raise WdtnoptError(f"placement: expected 'slot', 'frame' or 'sample', got {placement!r}")
        if not (isinstance(frame_cpu_share, (int, float)) and not isinstance(frame_cpu_share, bool)
                and 0.0 < frame_cpu_share <= 1.0):
            raise WdtnoptError(f"frame_cpu_share: expected a number in (0, 1], got {frame_cpu_share!r}")
        if placement == "sample" and frame_cpu_share != 1.0:
            raise WdtnoptError(f"frame_cpu_share: expected 1 with placement='sample' (its plans' shares are "
                               f"sample_shares), got {frame_cpu_share!r}")
        if not isinstance(placement_samples, int) or isinstance(placement_samples, bool) or placement_samples < 1:
            raise WdtnoptError(f"placement_samples: expected an integer >= 1, got {placement_samples!r}")
        shares = tuple(sample_shares) if isinstance(sample_shares, (list, tuple)) else None
        if (not shares or len(set(shares)) != len(shares)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 < v <= 1.0 for v in shares)):
            raise WdtnoptError(f"sample_shares: expected a non-empty list of distinct numbers in (0, 1], "
                               f"got {sample_shares!r}")
        from ..solvers import methods

        if not isinstance(method, str) or (method != "auto" and method not in methods()):
            raise WdtnoptError(f"method: expected 'auto' or one of {', '.join(sorted(methods()))}, got {method!r}")
        self.placement = placement
        self.frame_cpu_share = float(frame_cpu_share)
        self.placement_samples = placement_samples
        self.sample_shares = tuple(float(v) for v in shares)
        self.method = method
        self.exact_max_mus = exact_max_mus
        self.solver_options = dict(solver_options or {})
        self.solve_calls = 0
        self.non_optimal = 0

    def _method(self, n_mus: int) -> str:
        if self.method != "auto":
            return self.method
        return "exact" if n_mus <= self.exact_max_mus else "fast"

    def reset(self, trace: Any) -> None:
        super().reset(trace)
        self.solve_calls = 0
        self.non_optimal = 0
        # placement="sample" draws from a stream of its own: a child of the trace's seed with a spawn
        # key no trace stream has (they are SeedSequence(seed).spawn(k): keys (0,) .. (k - 1,)), so
        # neither the trace's draws nor any other run's change
        seq = np.random.SeedSequence(int(trace.seed), spawn_key=(SAMPLE_STREAM_KEY,))
        self._sample_rng = np.random.default_rng(seq)
        self.sample_choices: list[int] = []

    def failure_price(self) -> np.ndarray:
        raise NotImplementedError

    def penalties(self, state: Any) -> dict[str, Any]:
        price = self.failure_price()
        out: dict[str, Any] = {"failure_penalty": price}
        if state.is_frame_start:
            out["migration_penalty"] = self.migration_price(state, price)
        return out

    def migration_price(self, state: Any, price: np.ndarray) -> np.ndarray:
        """Expected failures during the unavailability of a move, at the current failure price.

        A snapshot has one migration penalty per MU, not per destination: it is priced for the
        move to the MU's serving BS (the move a placement would make to cut relay), or, for a DT
        already there, for the cheapest move elsewhere.
        """
        tr = self.trace
        t = state.t
        prev = state.placement
        assoc = tr.assoc[t]
        n, m = tr.n_mus, tr.n_bss
        slots_all = np.stack([tr.migration_slots(prev, np.full(n, j)) for j in range(m)], axis=1)   # [N, M]
        slots_all = np.where(slots_all == 0, np.iinfo(np.int64).max, slots_all)
        cheapest = slots_all.min(axis=1) if m > 1 else np.ones(n, np.int64)
        to_bs = tr.migration_slots(prev, assoc)
        slots = np.where(assoc != prev, to_bs, cheapest)
        return tr.scenario.request_prob * slots * price

    def _solve(self, snapshot: Snapshot) -> Any:
        from ..solvers import solve

        method = self._method(snapshot.n_mus)
        options = dict(self.solver_options)
        if method == "fast":
            options.setdefault("exact_pairs", 0)
        sol = solve(snapshot, method=method, **options)
        self.solve_calls += 1
        if sol.status != "optimal":
            self.non_optimal += 1
        return sol

    def place(self, snapshot: Snapshot, state: Any) -> np.ndarray:
        if self.placement == "sample" and not self._frame_is_slot():
            return self.sample_placement(snapshot)
        return np.asarray(self._solve(self.placement_snapshot(snapshot)).placement)

    def _frame_is_slot(self) -> bool:
        """Whether the trace's frame plans as its first slot: one slot a frame (``K = 1``) or no
        requests (``lam = 0``). Then ``"frame"`` and ``"sample"`` are the one-slot placement (the
        one check of both)."""
        sc = self.trace.scenario
        return int(sc.frame_slots) <= 1 or float(sc.request_prob) <= 0.0

    def sample_slots(self, snapshot: Snapshot) -> list[Snapshot]:
        """``placement_samples`` slots of the coming frame, drawn from the policy's own stream.

        Each draw keeps the frame start's channel gains, noise, prices and every other field, and
        draws what varies from slot to slot by the trace's laws (docs/model.md, section 2): which
        available DT requests (each with probability ``lam = request_prob``; a migrating DT
        requests in none), its sync size ``compression_ratio * U(data_bits_min, data_bits_max)``, and
        the equal split of each BS's band among its requesting MUs that follows from them (a
        silent MU quoted the share it would get by joining): ``bandwidth_n = bandwidth0_n k0_n / k_n``
        with ``k`` the MU's share count in the draw and ``k0`` at the frame start.

        Parameters
        ----------
        snapshot : Snapshot
            The frame start's placement snapshot.

        Returns
        -------
        list of Snapshot
            ``placement_samples`` snapshots (``allow_migration=False``), at ``placement_prev``.
        """
        sc = self.trace.scenario
        rng = self._sample_rng
        n, m = snapshot.n_mus, snapshot.n_bss
        avail = ~np.asarray(snapshot.migrating, bool)
        assoc = np.asarray(snapshot.assoc)

        def shares(req: np.ndarray) -> np.ndarray:
            count = np.bincount(assoc[req], minlength=m)
            return count[assoc] + (~req)

        k0 = shares(np.asarray(snapshot.request, bool))
        bw0 = np.asarray(snapshot.bandwidth, float)
        out = []
        for _ in range(self.placement_samples):
            req = (rng.random(n) < float(sc.request_prob)) & avail
            data = float(sc.compression_ratio) * rng.uniform(float(sc.data_bits_min), float(sc.data_bits_max), n)
            out.append(snapshot.replace(request=req, data_bits=data, bandwidth=bw0 * k0 / shares(req),
                                        allow_migration=False))
        return out

    def sample_placement(self, snapshot: Snapshot) -> np.ndarray:
        """The frame placement of ``placement="sample"``: the candidate of least sample-average cost.

        The candidates are the current placement and the ``"frame"`` plans at each share ``s`` of
        ``sample_shares`` (servers of ``s * cpu_hz / lam``, :meth:`placement_snapshot`), in that
        order, each counted once. A candidate ``x`` costs

            C(x) = (1 / S) sum_s J_s(x) + (lam / K) sum_{n : x_n != prev_n} migration_penalty_n,

        with ``J_s(x)`` the exact minimum (energy plus priced failures, :func:`wdtnopt.solve` at the
        fixed placement ``x``) of the ``s``-th drawn slot (:meth:`sample_slots`, the same draws for
        every candidate): an estimate of the mean cost of a slot of the frame, where the fluid plan
        prices each server's load at its mean and so misses the cost of the slots in which more of
        its DTs request (energy is convex in a DT's CPU share). A move is weighed against it as the
        ``"frame"`` plan weighs it: that plan counts every available DT as requesting, about
        ``1 / lam`` times a slot's energy, against the penalty over ``K``, i.e. a slot's energy
        against the penalty over ``K / lam`` slots. So the two rules differ only in how a
        placement's energy is estimated. The least ``C`` is kept (ties: the earlier candidate).
        ``sample_choices`` records the index of each frame's choice (0: stay, ``1 + i``: the plan at
        ``sample_shares[i]``).

        Parameters
        ----------
        snapshot : Snapshot
            The frame start's placement snapshot (``allow_migration=True``).

        Returns
        -------
        ndarray of int, shape [N]
            The chosen placement.
        """
        prev = np.asarray(snapshot.placement_prev, np.int64)
        cands = [prev]
        for share in self.sample_shares:
            plan = self._solve(self._frame_snapshot(snapshot, share)).placement
            cands.append(np.asarray(plan, np.int64))
        sc = self.trace.scenario
        spread = float(sc.request_prob) / int(sc.frame_slots)     # lam / K (docstring)
        pen = np.asarray(snapshot.migration_penalty, float)
        draws = self.sample_slots(snapshot)
        costs = []
        seen: dict[bytes, float] = {}
        for x in cands:
            key = x.tobytes()
            if key not in seen:
                J = [self._solve(d.replace(placement_prev=x)).objective for d in draws]
                seen[key] = float(np.mean(J)) + float(pen[x != prev].sum()) * spread
            costs.append(seen[key])
        best = int(np.argmin(costs))
        self.sample_choices.append(best)
        return cands[best]

    def placement_snapshot(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot a frame-start placement is solved on (``placement`` option).

        With ``"frame"``: over the frame's ``K`` slots each available DT requests ``K lam`` times in
        expectation (``lam = request_prob``), so its server should have room for all of them at
        ``1 / lam`` times its CPU, the fluid picture of the frame's load (times ``frame_cpu_share``:
        headroom for the slots where more than ``lam`` of a server's DTs request); and a move, paid
        once, buys a placement held for the ``K`` slots, so its penalty is spread over them. Only the
        placement is taken from this solve; each slot's admission and allocation are solved at it
        for the slot's real requests.

        Parameters
        ----------
        snapshot : Snapshot
            The frame start's placement snapshot (``allow_migration=True``).

        Returns
        -------
        Snapshot
            ``snapshot`` itself with ``placement="slot"`` (or ``K = 1``, or ``request_prob = 0``), else
            the planning snapshot above.
        """
        if self.placement != "frame":
            return snapshot
        return self._frame_snapshot(snapshot, self.frame_cpu_share)

    def _frame_snapshot(self, snapshot: Snapshot, share: float) -> Snapshot:
        if self._frame_is_slot():
            return snapshot
        sc = self.trace.scenario
        K, lam = int(sc.frame_slots), float(sc.request_prob)
        return snapshot.replace(request=~np.asarray(snapshot.migrating, bool),
                                cpu_hz=np.asarray(snapshot.cpu_hz, float) * share / lam,
                                migration_penalty=np.asarray(snapshot.migration_penalty, float) / K)

    def allocate(self, snapshot: Snapshot, state: Any) -> Decision:
        sol = self._solve(snapshot)
        return Decision(placement=np.asarray(sol.placement), served=np.asarray(sol.served),
                        tx_time=np.asarray(sol.tx_time), cpu_hz=np.asarray(sol.cpu_hz), level=sol.level)

    def extras(self) -> dict[str, Any]:
        out: dict[str, Any] = {"solve_calls": self.solve_calls, "non_optimal_solves": self.non_optimal}
        if self.placement == "sample":
            out["sample_choices"] = list(self.sample_choices)
        return out


# the largest failure price a policy may set (J): snapshots hold finite prices, and sums of a
# million of them, or a migration priced at several slots of failures, must stay finite too
_PRICE_LIMIT_J = 1e300


class MyopicOraclePolicy(SnapshotSolverPolicy):
    """One-slot optimum at a fixed failure price: by default ``eta * E_ref`` (the team reward's).

    ``failure_price`` (J per failure): one number for every MU, or one per MU, e.g. the multipliers
    of a hindsight bound (``HindsightBound.value_at(ratios)[1]``): the policy that prices failures
    as the bound's dual does, a reference for what constant prices can reach on a trace.

    Parameters
    ----------
    failure_price : float or array_like, shape [N], optional
        Price of a failed sync (J); default ``eta * E_ref``.
    **options
        Those of :class:`SnapshotSolverPolicy`.

    Raises
    ------
    WdtnoptError
        If ``failure_price`` is negative, not finite, a bool (or holds one) or not one number / one
        per MU (the count is checked when a trace starts).
    """

    name = "oracle"

    def __init__(self, *, failure_price: float | np.ndarray | None = None, **options: Any):
        super().__init__(**options)
        if failure_price is not None:
            price = np.asarray(failure_price, dtype=float)
            if holds_bool(failure_price) or price.ndim > 1 or not (np.isfinite(price).all() and (price >= 0).all()
                                      and (price <= _PRICE_LIMIT_J).all()):
                raise WdtnoptError(f"failure_price: expected a number in [0, {_PRICE_LIMIT_J:g}] J or a 1-D array of "
                                   f"them, got {failure_price!r}")
            failure_price = price
        self._price = failure_price

    def reset(self, trace: Any) -> None:
        super().reset(trace)
        if self._price is not None and self._price.ndim == 1 and self._price.size != trace.n_mus:
            raise WdtnoptError(f"failure_price: expected one price per MU ({trace.n_mus}), got {self._price.size}")

    def failure_price(self) -> np.ndarray:
        p = self.trace.scenario.failure_price if self._price is None else self._price
        return np.broadcast_to(np.asarray(p, dtype=float), (self.trace.n_mus,)).copy()


class LyapunovPolicy(SnapshotSolverPolicy):
    """Drift-plus-penalty: failure price ``(Q_n + theta) / V`` with per-MU virtual queues of target ``eps``.

    ``theta >= 0`` is a place-holder backlog: with ``theta = 0`` (the textbook rule) a failure is
    free whenever a queue is empty, so the failure budget goes to whichever request comes next;
    ``theta > 0`` keeps a floor under the price so that only requests dearer than ``theta / V`` fail.
    The queue law is unchanged, so each MU's failure ratio is still driven to ``eps``.
    On any horizon ``F_n - eps R_n <= Q_n(T) - Q_n(0)`` exactly: a MU meets ``eps`` whenever its
    queue ends no higher than it started, which a start at or above the price that meets ``eps``
    makes the rule rather than the exception (docs/longterm.md, "Finite horizons").
    Defaults ``V = 1000, theta = 3`` (a 3 mJ price floor), queues started at the team reward's
    price; ``theta = 0, initial_price = 0`` gives the textbook rule. Placements are planned for the
    frame's expected load (``placement="frame"``; ``"slot"`` is the one-slot rule of the oracle).

    Parameters
    ----------
    V : float, optional
        Energy weight of drift-plus-penalty (> 0; J^-1 scale of the price ``(Q + theta) / V``).
    eps : float or array_like, shape [N], optional
        Target failure ratio per MU; default the scenario's ``eps``.
    theta : float, optional
        Place-holder backlog (>= 0).
    initial_price : float or None, optional
        Failure price of the first slot (J): the queues start at ``Q_n(0) = max(V initial_price -
        theta, 0)``. None (the default): the team reward's price ``eta * E_ref``; 0: empty queues.
    **options
        Those of :class:`SnapshotSolverPolicy`; ``placement`` defaults to ``"frame"`` here (a
        placement planned for the frame's expected load, docs/longterm.md).

    Raises
    ------
    WdtnoptError
        If ``V`` is not a finite number > 0, ``theta`` not a finite number >= 0 or ``initial_price``
        not a finite number >= 0 (or None), a bool being no number (``True`` is refused, not read as
        1: the rule of the suites' ``lyapunov_V`` and ``lyapunov_theta``), or ``eps`` is or holds a
        bool; when a trace starts, if ``eps`` is not in ``[0, 1]`` or not one number or one per MU.
    """

    name = "lyapunov"

    def __init__(self, *, V: float = 1000.0, eps: float | np.ndarray | None = None, theta: float = 3.0,
                 initial_price: float | None = None, **options: Any):
        options.setdefault("placement", "frame")
        super().__init__(**options)
        # one rule with the benchmark suites' lyapunov_V / lyapunov_theta (a bool is no number)
        if not is_finite_number(V, positive=True):
            raise WdtnoptError(f"V: expected a finite number > 0, got {V!r}")
        if not is_finite_number(theta):
            raise WdtnoptError(f"theta: expected a finite number >= 0, got {theta!r}")
        if initial_price is not None and not is_finite_number(initial_price):
            raise WdtnoptError(f"initial_price: expected a number >= 0 (J) or None, got {initial_price!r}")
        if eps is not None and holds_bool(eps):
            raise WdtnoptError(f"eps: expected numbers in [0, 1], got {eps!r}")
        self.V = float(V)
        self.theta = float(theta)
        self.initial_price = initial_price
        self._eps = eps

    def reset(self, trace: Any) -> None:
        super().reset(trace)
        n = trace.n_mus
        eps = trace.scenario.eps if self._eps is None else self._eps
        try:
            eps = np.broadcast_to(np.asarray(eps, dtype=float), (n,)).copy()
        except (TypeError, ValueError):
            raise WdtnoptError(f"eps: expected one number in [0, 1] or one per MU ({n}), got {self._eps!r}") from None
        if not (np.isfinite(eps).all() and (eps >= 0).all() and (eps <= 1).all()):
            raise WdtnoptError(f"eps: expected numbers in [0, 1], got {self._eps!r}")
        self.eps = eps
        p0 = trace.scenario.failure_price if self.initial_price is None else self.initial_price
        # the queues start where the price is p0 (never below the floor theta / V)
        self.Q0 = np.full(n, max(self.V * p0 - self.theta, 0.0))
        # a queue grows by at most 1 a slot: the price (Q + theta) / V stays below this on the trace
        top = (float(self.Q0.max(initial=0.0)) + trace.slots + self.theta) / self.V
        if not top <= _PRICE_LIMIT_J:   # e.g. V = 1e-308: an infinite price, which no snapshot holds
            raise WdtnoptError(f"V, theta: the failure price (Q + theta) / V can reach {top:.3g} J on this trace "
                               f"(V = {self.V!r}, theta = {self.theta!r}), beyond {_PRICE_LIMIT_J:g} J that "
                               "snapshots and sums of prices hold; use a larger V or a smaller theta")
        self.Q = self.Q0.copy()
        self.backlog = np.zeros(trace.slots)
        self._t = 0

    def failure_price(self) -> np.ndarray:
        return (self.Q + self.theta) / self.V

    def observe(self, snapshot: Snapshot, evaluation: Evaluation) -> None:
        req = snapshot.request.astype(float)
        self.Q = np.maximum(self.Q + req * (evaluation.failed.astype(float) - self.eps), 0.0)
        self.backlog[self._t] = self.Q.mean()
        self._t += 1

    def extras(self) -> dict[str, Any]:
        return {**super().extras(), "V": self.V, "mean_backlog": float(self.backlog.mean()),
                "backlog": self.backlog.copy(), "final_queues": self.Q.copy()}
