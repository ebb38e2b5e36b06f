"""The observation inputs of the environment that do not depend on decisions, one window of slots at a
time (docs/env.md, "Observations"; docs/model.md, section 2.2).

:class:`Features` computes, for a window of slots of a trace, the per-slot quantities every
observation reads (transmission time at full power, SNR, relay times, update work, the CPU left on
each server, ...). On a trace held whole the window is the whole trace (as before windowing); on a
:class:`~wdtnopt.trace.WindowedTrace` it follows the trace's own windows, so an episode holds one
window of features (and one of the trace) at a time. Every value is an elementwise function of the
slot's trace fields, so a window's features equal the same slots of the whole-trace features bit for
bit (tested on paper, failure, THz/RIS and semantic-menu scenarios).

:class:`FeatureStack` stacks the current windows of E environments ``[E, W, ...]`` and reads one
slot of each (:meth:`FeatureStack.at`), loading the next window of an environment when its slot
leaves the one in memory.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from .. import physics
from ..processes.semantic import LEVEL_FIELDS
from ..trace import Trace, TraceWindow

SLOT_FEATURES = ("t_min", "log_snr", "log10_snr_pmax", "bits_ln2_over_b", "spectral", "noise_rise", "relay",
                 "cycles", "cpu_hz", "server_up")
"""The per-slot features of :class:`Features`, each ``[W, ...]`` for a window of W slots."""

TRACE_SLOT_FIELDS = ("gain", "assoc", "request", "bandwidth", "noise_psd", "data_bits")
"""The per-slot trace fields an observation or an environment step reads beside the features."""


def window_features(trace: Trace, win: TraceWindow) -> dict[str, np.ndarray]:
    """The features (:data:`SLOT_FEATURES`) of the slots of ``win``, a window of ``trace``.

    Parameters
    ----------
    trace : Trace
        The trace (its per-MU and per-server constants, server processes and scenario).
    win : TraceWindow
        Slots ``start .. stop - 1`` of ``trace`` (:meth:`Trace.window_at`).

    Returns
    -------
    dict of str to ndarray
        ``t_min [W, N]`` transmission time at ``p_max`` (s); ``log_snr``, ``log10_snr_pmax``
        ``[W, N]`` (SNR at ``p_max``, docs/model.md, section 3); ``bits_ln2_over_b [W, N]``
        (``D ln 2 / B``, s); ``spectral [W, N]`` (``D / (B deadline) / 10``); ``noise_rise [W, N]``
        (interference over thermal noise, log10 / 3); ``relay [W, N, M]`` relay time of MU n's data
        from its serving BS to server m (s); ``cycles [W, N]`` update work (cycles);
        ``cpu_hz [W, M]`` CPU left to DTs (cycles/s, 0 when down, docs/model.md, section 12);
        ``server_up [W, M]`` (bool).
    """
    tr, sc = trace, trace.scenario
    dl = tr.deadline
    w = win.stop - win.start
    g = np.take_along_axis(win.gain, win.assoc[:, :, None], 2)[:, :, 0]                # [W, N] serving gain
    snr = tr.p_max * g / (win.noise_psd * win.bandwidth)
    rate = win.bandwidth * np.log2(1.0 + snr)
    out = {
        "t_min": win.data_bits / rate,                                                   # [W, N] (s)
        "log_snr": np.log10(1.0 + snr) / 5.0,
        "log10_snr_pmax": np.log10(snr),
        "bits_ln2_over_b": win.data_bits * np.log(2.0) / win.bandwidth,                 # [W, N] (s)
        "spectral": win.data_bits / (win.bandwidth * dl) / 10.0,
        "noise_rise": np.log10(win.noise_psd / sc.noise_psd_w_hz) / 3.0,
        # relay time of MU n's data to server m at slot t: [W, N, M]
        "relay": physics.backhaul_time(tr.backhaul_latency_s[win.assoc], tr.backhaul_s_per_bit[win.assoc],
                                       win.data_bits[:, :, None]),
        "cycles": tr.cycles_per_bit * win.data_bits,                                     # [W, N]
        # server status (docs/model.md, section 12): CPU left to DTs and up/down, per slot [W, M]
        "cpu_hz": (np.stack([tr.cpu_available_hz(t) for t in range(win.start, win.stop)]) if tr.server_events
                   else np.broadcast_to(tr.cpu_hz, (w, tr.n_bss))),
        "server_up": win.server_up if win.server_up is not None else np.ones((w, tr.n_bss), bool),
    }
    return out


class Features:
    """Per-trace precomputation of the observation inputs that do not depend on decisions, held one
    window of the trace's slots at a time (the whole trace when it is held whole).

    Parameters
    ----------
    trace : Trace
        The episode's trace; a :class:`~wdtnopt.trace.WindowedTrace` is read window by window.

    Attributes
    ----------
    trace : Trace
    slots : int
        T of the trace.
    t_min, log_snr, log10_snr_pmax, bits_ln2_over_b, spectral, noise_rise, relay, cycles, cpu_hz, server_up
        The whole ``[T, ...]`` features (:func:`window_features`): the arrays of the one window of a
        whole trace; on a windowed trace built on access, window by window, after checking that
        they fit (read :meth:`window` instead to keep memory bounded).
    """

    def __init__(self, trace: Trace):
        self.trace = trace
        self.slots = int(trace.slots)
        self.start = self.stop = 0
        self._arrays: dict[str, np.ndarray] = {}
        self._stack: "FeatureStack | None" = None   # this trace as a stack of one environment (built on first use)
        self.window(0)

    def window(self, t: int) -> tuple[int, int, dict[str, np.ndarray]]:
        """The window of features holding slot ``t``, computed when ``t`` leaves the window in memory
        (the previous one is dropped first).

        Parameters
        ----------
        t : int
            A slot of the trace (``0 <= t < self.slots``).

        Returns
        -------
        start, stop : int
            First slot of the window and one past its last (the trace's own window,
            :meth:`~wdtnopt.trace.Trace.window_at`).
        arrays : dict of str to ndarray
            The features (:data:`SLOT_FEATURES`, :func:`window_features`) and the trace's per-slot
            fields (:data:`TRACE_SLOT_FIELDS`) of slots ``start .. stop - 1``, each ``[stop - start, ...]``.

        Raises
        ------
        IndexError
            If ``t`` is not a slot of the trace.
        """
        if not self.start <= t < self.stop:
            self._arrays = {}
            win = self.trace.window_at(int(t))
            arrays = window_features(self.trace, win)
            arrays.update({k: getattr(win, k) for k in TRACE_SLOT_FIELDS})
            self.start, self.stop, self._arrays = win.start, win.stop, arrays
        return self.start, self.stop, self._arrays

    def __getattr__(self, name: str) -> Any:
        if name in SLOT_FEATURES and "_arrays" in self.__dict__:
            if self.start == 0 and self.stop == self.slots:
                return self._arrays[name]
            return self._materialize(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _materialize(self, name: str) -> np.ndarray:
        """The whole ``[T, ...]`` feature ``name`` of a windowed trace (refused if it cannot fit)."""
        from ..trace import check_memory_fits

        first = self._arrays[name]
        shape = (self.slots, *first.shape[1:])
        check_memory_fits(int(np.prod(shape)) * first.dtype.itemsize,
                          f"the whole {name} feature {list(shape)} of a windowed trace",
                          "read it a window at a time (Features.window)")
        out = np.empty(shape, first.dtype)
        t = 0
        while t < self.slots:
            a, b, arrays = self.window(t)
            out[a:b] = arrays[name]
            t = b
        return out


class FeatureStack:
    """The per-trace arrays of E environments stacked ``[E, ...]`` (features, trace data and the
    snapshot's default penalties), so one slot of every environment is read with one index per array.

    The per-slot arrays hold the current window of each environment's :class:`Features`
    (``[E, W, ...]``; the whole trace when it is held whole); :meth:`at` loads the window holding an
    environment's slot when it leaves the one in memory.

    ``at(t)`` gives, for slots ``t [E]``, an object with the :class:`Snapshot` field names and the
    :class:`Features` names, each ``[E, ...]`` (what :func:`observe_arrays`, :func:`allocation` and
    :func:`wdtnopt.cost.evaluate_arrays` read)."""

    PER_SLOT = ("gain", "assoc", "request", "bandwidth", "noise_psd", "data_bits",       # trace [T, ...]
                "t_min", "log_snr", "log10_snr_pmax", "bits_ln2_over_b", "spectral", "noise_rise", "relay",
                "cycles", "cpu_hz", "server_up")                                        # Features [T, ...]
    PER_TRACE = ("cycles_per_bit", "dt_size_bits", "deadline", "p_max", "storage_bits",
                 "backhaul_latency_s", "backhaul_s_per_bit", "failure_penalty", "migration_penalty")

    def __init__(self, n_envs: int):
        self.n_envs = n_envs
        self.arrays: dict[str, np.ndarray] = {}
        self.slots = 0                                        # T of the stacked traces
        self.features: list[Features | None] = [None] * n_envs
        self.start = np.zeros(n_envs, np.int64)               # first slot of each environment's window
        self.stop = np.zeros(n_envs, np.int64)                # one past its last

    @classmethod
    def single(cls, feat: "Features") -> "FeatureStack":
        """One environment, as views (no copies)."""
        st = cls(1)
        st.load(0, feat)
        return st

    @classmethod
    def _sources(cls, feat: "Features") -> dict[str, np.ndarray]:
        tr = feat.trace
        out = {k: getattr(tr, k) for k in cls.PER_TRACE[:-2]}
        out.update(tr.default_penalties())   # what SimState.snapshot gives the environment
        if tr.levels is not None:            # the semantic menu (per trace): Snapshot level fields
            out.update(tr.levels)
        return out

    def load(self, e: int, feat: "Features") -> None:
        """Put environment ``e``'s trace (all traces of a stack have the same size) into the stack,
        at the window holding slot 0."""
        self.features[e] = feat
        self.slots = feat.slots
        for k, v in self._sources(feat).items():
            self._put(k, e, v)
        start, stop, arrays = feat.window(0)
        for k in self.PER_SLOT:
            self._put(k, e, arrays[k])
        self.start[e], self.stop[e] = start, stop

    def _put(self, k: str, e: int, v: np.ndarray) -> None:
        """Row ``e`` of array ``k`` := ``v`` (one environment: a view; else a copy, the array grown
        along its first per-environment axis when ``v`` is longer)."""
        if self.n_envs == 1:
            self.arrays[k] = v[None]
            return
        a = self.arrays.get(k)
        if a is None or a.shape[2:] != v.shape[1:] or (v.ndim and a.shape[1] < v.shape[0]):
            new = np.zeros((self.n_envs, *v.shape), v.dtype)
            if a is not None and a.shape[2:] == v.shape[1:]:
                new[:, :a.shape[1]] = a
            self.arrays[k] = a = new
        if v.ndim:
            a[e, :v.shape[0]] = v
        else:
            a[e] = v

    def _advance(self, t: np.ndarray) -> None:
        """Load the window holding ``t[e]`` of every environment whose slot left its window. With
        several environments the per-slot arrays are rebuilt (never written in place), so what an
        earlier :meth:`at` returned keeps its values."""
        move = np.flatnonzero((t < self.start) | (t >= self.stop))
        if move.size == 0:
            return
        if self.n_envs == 1:   # drop the old window first: one window of the trace in memory
            for k in self.PER_SLOT:
                self.arrays.pop(k, None)
            start, stop, arrays = self.features[0].window(int(t[0]))
            for k in self.PER_SLOT:
                self.arrays[k] = arrays[k][None]
            self.start[0], self.stop[0] = start, stop
            return
        windows = {int(e): self.features[e].window(int(t[e])) for e in move}
        width = max([int(self.stop[e] - self.start[e]) for e in range(self.n_envs) if e not in windows]
                    + [b - a for a, b, _ in windows.values()])
        for k in self.PER_SLOT:
            old = self.arrays[k]
            new = np.zeros((self.n_envs, width, *old.shape[2:]), old.dtype)
            for e in range(self.n_envs):
                if e in windows:
                    v = windows[e][2][k]
                    new[e, :v.shape[0]] = v
                else:
                    w = int(self.stop[e] - self.start[e])
                    new[e, :w] = old[e, :w]
            self.arrays[k] = new
        for e, (a, b, _) in windows.items():
            self.start[e], self.stop[e] = a, b

    def at(self, t: np.ndarray) -> SimpleNamespace:
        """Slot ``t[e]`` of every environment ``e`` (``t [E]``, each ``0 <= t[e] < slots``): the
        per-slot arrays (:attr:`PER_SLOT`) at those slots and the per-trace ones (:attr:`PER_TRACE`,
        a semantic menu's level fields), each ``[E, ...]``; views when the environments are in step."""
        t = np.asarray(t)
        self._advance(t)
        local = t - self.start
        if (local == local[0]).all():               # environments in step (the usual case): views
            out = {k: self.arrays[k][:, int(local[0])] for k in self.PER_SLOT}
        else:
            rows = np.arange(self.n_envs)
            out = {k: self.arrays[k][rows, local] for k in self.PER_SLOT}
        out.update({k: self.arrays[k] for k in self.PER_TRACE})
        out.update({k: self.arrays[k] for k in LEVEL_FIELDS if k in self.arrays})   # a menu, if any
        return SimpleNamespace(**out)
