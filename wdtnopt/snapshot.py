"""The snapshot: the data of one decision point (docs/model.md, section 5), validated on construction.

Field names are the public contract. ``Snapshot.from_dict`` takes plain lists or numpy arrays,
``to_dict`` returns JSON-ready lists, and the JSON file format is exactly that dict. Every array is
stored read-only, so a snapshot can be shared between solvers without copies. A number field
takes integers of any size (JSON has no limit: one past int64 reads as a float).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SnapshotError, key_name
from .fieldtypes import holds_bool
from .io import atomic_write_json, read_text
from . import physics

# field -> (shape in terms of N and M, kind, constraint)
# kinds: "f" float, "i" index into servers, "b" bool; constraints: "pos" > 0, "nonneg" >= 0
_SPEC: dict[str, tuple[tuple[str, ...], str, str]] = {
    "gain": (("N", "M"), "f", "pos"),
    "assoc": (("N",), "i", ""),
    "bandwidth": (("N",), "f", "pos"),
    "noise_psd": (("N",), "f", "pos"),
    "p_max": (("N",), "f", "nonneg"),
    "data_bits": (("N",), "f", "pos"),
    "cycles_per_bit": (("N",), "f", "nonneg"),
    "deadline": (("N",), "f", "pos"),
    "request": (("N",), "b", ""),
    "dt_size_bits": (("N",), "f", "nonneg"),
    "cpu_hz": (("M",), "f", "nonneg"),
    "storage_bits": (("M",), "f", "nonneg"),
    "backhaul_latency_s": (("M", "M"), "f", "nonneg"),
    "backhaul_s_per_bit": (("M", "M"), "f", "nonneg"),
    "placement_prev": (("N",), "i", ""),
    "migrating": (("N",), "b", ""),
    "failure_penalty": (("N",), "f", "nonneg"),
    "migration_penalty": (("N",), "f", "nonneg"),
}
# optional fields (after allow_migration): left out or None, they take their default (all True),
# so snapshots and files written before server availability existed read unchanged
_OPTIONAL: dict[str, tuple[tuple[str, ...], str, str]] = {
    "server_up": (("M",), "b", ""),
    "migration_mask": (("N",), "b", ""),
}
_SPEC.update(_OPTIONAL)
FIELDS: tuple[str, ...] = tuple(k for k in _SPEC if k not in _OPTIONAL) + ("allow_migration",) + tuple(_OPTIONAL)
# the optional semantic compression menu (docs/model.md, section 13): all or none
_LEVEL_SPEC: dict[str, tuple[tuple[str, ...], str, str]] = {
    "level_ratio": (("N", "L"), "f", "pos"),
    "level_cycles_per_bit": (("N", "L"), "f", "nonneg"),
    "level_accuracy": (("N", "L"), "f", "nonneg"),
    "mu_cpu_hz": (("N",), "f", "pos"),
    "mu_kappa": (("N",), "f", "nonneg"),
    "min_accuracy": (("N",), "f", "nonneg"),
}
REQUIRED: tuple[str, ...] = FIELDS
"""Every field but the semantic menu (always present on a built snapshot)."""
PER_MU: tuple[str, ...] = tuple(f for f, (shape, _, _) in _SPEC.items() if shape[0] == "N")
"""The fields of ``REQUIRED`` indexed by MU first ([N] or [N, M])."""
FIELDS = REQUIRED + tuple(_LEVEL_SPEC)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One decision point: N MUs, M servers, SI units (see docs/model.md, section 5)."""

    gain: np.ndarray               # [N, M] channel power gain MU n -> BS m (linear)
    assoc: np.ndarray              # [N] serving BS of each MU
    bandwidth: np.ndarray          # [N] uplink bandwidth of each MU (Hz)
    noise_psd: np.ndarray          # [N] noise-plus-interference PSD at the serving BS (W/Hz)
    p_max: np.ndarray              # [N] transmit power cap (W)
    data_bits: np.ndarray          # [N] bits to send for this sync
    cycles_per_bit: np.ndarray     # [N] DT update work (cycles/bit)
    deadline: np.ndarray           # [N] sync deadline (s)
    request: np.ndarray            # [N] does MU n request a sync now
    dt_size_bits: np.ndarray       # [N] DT size (bit)
    cpu_hz: np.ndarray             # [M] server CPU (cycles/s)
    storage_bits: np.ndarray       # [M] server storage (bit)
    backhaul_latency_s: np.ndarray  # [M, M] fixed relay latency between BSs (s)
    backhaul_s_per_bit: np.ndarray  # [M, M] relay time per bit between BSs (s/bit)
    placement_prev: np.ndarray     # [N] current host of each DT
    migrating: np.ndarray          # [N] DT unavailable (under migration): pinned and not served
    failure_penalty: np.ndarray    # [N] cost of a failed requested sync (J-equivalent)
    migration_penalty: np.ndarray  # [N] cost of moving the DT (J-equivalent)
    allow_migration: bool = True   # False: placement fixed to placement_prev
    server_up: Any = None          # [M] server is up (a down server serves no DT and receives none); None: all up
    migration_mask: Any = None     # [N] DT may change host in this decision (with allow_migration); None: all may
    # semantic compression menu (optional, all or none): level l of MU n sends level_ratio[n, l] *
    # data_bits after level_cycles_per_bit[n, l] * data_bits extraction cycles at mu_cpu_hz[n]
    level_ratio: np.ndarray | None = None           # [N, L] in (0, 1]
    level_cycles_per_bit: np.ndarray | None = None  # [N, L] extraction cycles per data bit
    level_accuracy: np.ndarray | None = None        # [N, L] task accuracy of each level
    mu_cpu_hz: np.ndarray | None = None             # [N] MU CPU for extraction (cycles/s)
    mu_kappa: np.ndarray | None = None              # [N] switched capacitance (J s^2 / cycle^3)
    min_accuracy: np.ndarray | None = None          # [N] least accuracy a level must reach

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        arrays: dict[str, np.ndarray] = {}
        for name, (_, kind, _) in _SPEC.items():
            if name in _OPTIONAL and getattr(self, name) is None:
                continue
            arr, msg = _coerce(getattr(self, name), kind)
            if msg:
                problems.append((name, msg))
            else:
                arrays[name] = arr
        am = self.allow_migration
        if isinstance(am, np.bool_):
            am = bool(am)
        if not isinstance(am, bool):
            problems.append(("allow_migration", f"expected true or false, got {am!r}"))
        if problems:
            raise SnapshotError(problems)
        gain_shape = arrays["gain"].shape
        # sizes by majority over the fields that carry them, so one wrong field is the one named
        n = _majority([a.shape[i] for name, (shape, _, _) in _SPEC.items() for i, d in enumerate(shape)
                       if d == "N" and name in arrays and (a := arrays[name]).ndim == len(shape)])
        m = _majority([a.shape[i] for name, (shape, _, _) in _SPEC.items() for i, d in enumerate(shape)
                       if d == "M" and name in arrays and (a := arrays[name]).ndim == len(shape)])
        if n < 1 or m < 1:
            problems.append(("gain", f"expected a 2-D array [N, M] with N, M >= 1, got shape {list(gain_shape)}"))
            raise SnapshotError(problems)
        dims = {"N": n, "M": m}
        for name, (shape, _, _) in _OPTIONAL.items():
            if name not in arrays:
                arrays[name] = np.ones(tuple(dims[d] for d in shape), dtype=bool)
        for name, (shape, kind, cons) in _SPEC.items():
            arr = arrays[name]
            want = tuple(dims[d] for d in shape)
            if arr.shape != want:
                sym = "[" + ", ".join(shape) + "]"
                problems.append((name, f"expected shape {sym} = {list(want)}, got {list(arr.shape)}"))
                continue
            if kind == "f":
                bad = ~np.isfinite(arr)
                if bad.any():
                    problems.append((name, f"must be finite, got {arr[bad].flat[0].item()!r} at {_where(bad)}"))
                    continue
                if cons == "pos" and (arr <= 0).any():
                    problems.append((name, f"must be > 0, got {arr[arr <= 0].flat[0].item()!r} at {_where(arr <= 0)}"))
                elif cons == "nonneg" and (arr < 0).any():
                    problems.append((name, f"must be >= 0, got {arr[arr < 0].flat[0].item()!r} at {_where(arr < 0)}"))
                elif shape == ("M", "M") and np.diagonal(arr).any():
                    # a DT on its MU's serving BS has no relay (docs/model.md, section 3): the
                    # solvers and evaluate read the diagonal as that relay, so it must be 0
                    bad = np.eye(m, dtype=bool) & (arr != 0)
                    problems.append((name, f"the diagonal must be 0 (no relay to a DT on its MU's serving BS), "
                                           f"got {arr[bad].flat[0].item()!r} at {_where(bad)}"))
            elif kind == "i":
                bad = (arr < 0) | (arr >= m)
                if bad.any():
                    problems.append((name, f"must be a server index in [0, {m - 1}], got {arr[bad].flat[0]} at {_where(bad)}"))
        if not problems:
            # the objective adds the penalties up (docs/model.md, section 5): their sum must be a float
            with np.errstate(over="ignore"):
                total = float(np.sum(arrays["failure_penalty"])) + float(np.sum(arrays["migration_penalty"]))
            if not np.isfinite(total):
                problems.append(("failure_penalty", "the failure and migration penalties must sum to a finite "
                                                    "number of J (the objective adds them), got a sum past the largest float"))
        if problems:
            raise SnapshotError(problems)
        levels = _check_levels(self, n)
        for name, arr in {**arrays, **levels}.items():
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "allow_migration", am)

    @classmethod
    def _trusted(cls, **fields: Any) -> "Snapshot":
        """Build from arrays already validated and read-only (the trace generator's), skipping checks.

        Only :meth:`wdtnopt.trace.Trace.snapshot` uses it, after checking the few arrays a caller
        supplies; the result equals what the validating constructor builds (tested).
        """
        obj = object.__new__(cls)
        for name in FIELDS:
            if name in _OPTIONAL and fields.get(name) is None:
                shape = tuple(fields["gain"].shape[0 if d == "N" else 1] for d in _OPTIONAL[name][0])
                value = np.ones(shape, dtype=bool)
                value.setflags(write=False)
                object.__setattr__(obj, name, value)
            else:
                object.__setattr__(obj, name, fields.get(name))
        return obj

    # -- sizes and derived data (computed once, shared by evaluate and the solvers) ------------
    @property
    def n_mus(self) -> int:
        return int(self.gain.shape[0])

    @property
    def n_bss(self) -> int:
        return int(self.gain.shape[1])

    @cached_property
    def serving_gain(self) -> np.ndarray:
        """[N] gain of each MU to its serving BS."""
        return self.gain[np.arange(self.n_mus), self.assoc]

    @cached_property
    def cycles(self) -> np.ndarray:
        """[N] CPU cycles of one DT update (cycles_per_bit * data_bits)."""
        return self.cycles_per_bit * self.data_bits

    @cached_property
    def relay(self) -> np.ndarray:
        """[N, M] backhaul relay time if MU n's DT is hosted on server m (0 on its serving BS)."""
        return physics.backhaul_time(self.backhaul_latency_s[self.assoc, :], self.backhaul_s_per_bit[self.assoc, :],
                                     self.data_bits[:, None])

    @cached_property
    def t_min(self) -> np.ndarray:
        """[N] shortest transmission time allowed by the power cap (inf if p_max = 0)."""
        return physics.min_tx_time(self.data_bits, self.bandwidth, self.noise_psd, self.serving_gain, self.p_max)

    @property
    def has_levels(self) -> bool:
        """True if the snapshot carries a semantic compression menu."""
        return self.level_ratio is not None

    @property
    def n_levels(self) -> int:
        """Levels L of the menu (1 without a menu: the single level that sends ``data_bits``)."""
        return 1 if self.level_ratio is None else int(self.level_ratio.shape[1])

    @cached_property
    def extraction_time_s(self) -> np.ndarray:
        """[N, L] MU extraction time ``level_cycles_per_bit * data_bits / mu_cpu_hz`` (s)."""
        return self.level_cycles_per_bit * self.data_bits[:, None] / self.mu_cpu_hz[:, None]

    @cached_property
    def extraction_energy_j(self) -> np.ndarray:
        """[N, L] MU extraction energy ``mu_kappa * cycles * mu_cpu_hz^2`` (J)."""
        cycles = self.level_cycles_per_bit * self.data_bits[:, None]
        return self.mu_kappa[:, None] * cycles * self.mu_cpu_hz[:, None] ** 2

    @cached_property
    def level_allowed(self) -> np.ndarray:
        """[N, L] levels on each MU's menu: accuracy at least ``min_accuracy`` (all True without a menu)."""
        if self.level_ratio is None:
            return np.ones((self.n_mus, 1), dtype=bool)
        return self.level_accuracy >= self.min_accuracy[:, None]

    def at_levels(self, level: Any) -> "Snapshot":
        """The menu-free snapshot of a fixed level per MU (the reduction of docs/model.md): data
        ``level_ratio * data_bits``, deadline shortened by the extraction time (it may be <= 0: that
        MU cannot be served), everything else unchanged. Its costs exclude the extraction energy."""
        if self.level_ratio is None:
            return self
        lv = np.asarray(level, dtype=np.int64)[:, None]
        data = np.take_along_axis(self.level_ratio, lv, 1)[:, 0] * self.data_bits
        deadline = self.deadline - np.take_along_axis(self.extraction_time_s, lv, 1)[:, 0]
        fields = {f: getattr(self, f) for f in REQUIRED}
        fields.update(data_bits=_frozen(data), deadline=_frozen(deadline))
        return Snapshot._trusted(**fields)

    @cached_property
    def pinned(self) -> np.ndarray:
        """[N] DTs whose host cannot change in this decision."""
        if not self.allow_migration:
            return np.ones(self.n_mus, dtype=bool)
        return self.migrating | ~self.migration_mask

    @cached_property
    def host_up(self) -> np.ndarray:
        """[N] the current host (``placement_prev``) of each DT is up."""
        return self.server_up[self.placement_prev]

    # -- conversion ----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Snapshot":
        """Build from a mapping of the snapshot's field names (lists or numpy arrays).

        Parameters
        ----------
        data : dict
            Every field of :class:`Snapshot` (docs/model.md, section 5): ``gain [N, M]``,
            ``assoc [N]``, ..., ``allow_migration``, in SI units.

        Returns
        -------
        Snapshot

        Raises
        ------
        SnapshotError
            Naming every missing, unknown or invalid field at once.
        """
        if not isinstance(data, dict):
            raise SnapshotError([("<root>", f"expected an object of snapshot fields, got {type(data).__name__}")])
        missing = [f for f in REQUIRED if f not in data and f not in _OPTIONAL]
        unknown = sorted((key_name(k) for k in set(data) - set(FIELDS)), key=str)
        problems = [(f, "missing") for f in missing] + [(f, "unknown field") for f in unknown]
        if problems:
            raise SnapshotError(problems)
        return cls(**{f: data.get(f) for f in FIELDS})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (plain lists, floats, ints and bools)."""
        out: dict[str, Any] = {name: getattr(self, name).tolist() for name in _SPEC if name not in _OPTIONAL}
        out["allow_migration"] = bool(self.allow_migration)
        for name in _OPTIONAL:   # written only when they say something (old readers keep working)
            if not getattr(self, name).all():
                out[name] = getattr(self, name).tolist()
        if self.level_ratio is not None:
            out.update({name: getattr(self, name).tolist() for name in _LEVEL_SPEC})
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Snapshot":
        """Read a JSON snapshot file (the ``to_dict`` format).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        Snapshot

        Raises
        ------
        SnapshotError
            If the file cannot be read or parsed, or a field is missing, unknown or invalid.
        """
        return cls.from_dict(read_json(path, SnapshotError))

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_json(path, self.to_dict())

    def replace(self, **changes: Any) -> "Snapshot":
        """A validated copy with some fields changed.

        Raises
        ------
        SnapshotError
            A changed field is not a snapshot field (as :meth:`from_dict` says of an unknown key),
            or a new value is invalid.
        """
        unknown = [k for k in changes if k not in FIELDS]
        if unknown:
            raise SnapshotError([(k, "unknown field") for k in unknown])
        return Snapshot(**{**{f: getattr(self, f) for f in FIELDS}, **changes})

    def select(self, mus: Any) -> "Snapshot":
        """The snapshot restricted to the MUs ``mus`` (indices or a boolean mask); servers unchanged.

        Raises
        ------
        SnapshotError
            ``mus`` is a mask of another length than N, holds an index that is not an integer
            in ``[0, N - 1]`` (``mus`` named; a fraction was truncated, -1 read as the last MU), or
            selects no MU.
        """
        raw = np.asarray(mus)
        n = self.n_mus
        if raw.dtype == bool:
            if raw.shape != (n,):
                raise SnapshotError([("mus", f"expected a boolean mask of shape [N] = [{n}], got shape {list(raw.shape)}")])
            idx = np.flatnonzero(raw)
        else:
            ok = raw.ndim <= 1 and (raw.dtype.kind in "iu" or (raw.dtype.kind == "f" and np.all(raw == np.round(raw))))
            if not ok or (raw.size and ((raw < 0) | (raw >= n)).any()):
                raise SnapshotError([("mus", f"expected MU indices (integers in [0, {n - 1}]) or a boolean mask, "
                                             f"got {mus!r}")])
            idx = raw.astype(np.int64).reshape(-1)
        if idx.size == 0:
            raise SnapshotError([("mus", "selects no MU (a snapshot has N >= 1)")])
        data: dict[str, Any] = {}
        for name, (shape, _, _) in _SPEC.items():
            arr = getattr(self, name)
            data[name] = arr[idx] if shape[0] == "N" else arr
        if self.level_ratio is not None:
            data.update({name: getattr(self, name)[idx] for name in _LEVEL_SPEC})
        return Snapshot(**data, allow_migration=self.allow_migration)

    def __repr__(self) -> str:
        down = int((~self.server_up).sum())
        return (f"Snapshot(n_mus={self.n_mus}, n_bss={self.n_bss}, requests={int(self.request.sum())}, "
                f"migrating={int(self.migrating.sum())}, allow_migration={self.allow_migration}"
                + (f", servers_down={down}" if down else "") + ")")


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _check_levels(s: Snapshot, n: int) -> dict[str, np.ndarray]:
    """The validated level fields (all or none; shapes [N, L] and [N], L >= 1), or SnapshotError."""
    given = [name for name in _LEVEL_SPEC if getattr(s, name) is not None]
    if not given:
        return {}
    problems: list[tuple[str, str]] = []
    if len(given) != len(_LEVEL_SPEC):
        missing = [name for name in _LEVEL_SPEC if name not in given]
        # each missing field named; the rule once (it was repeated per field: 900 characters for five)
        raise SnapshotError([(name, "missing: a semantic menu needs all of " + ", ".join(_LEVEL_SPEC) if i == 0
                              else "missing") for i, name in enumerate(missing)])
    out: dict[str, np.ndarray] = {}
    for name, (shape, kind, cons) in _LEVEL_SPEC.items():
        arr, msg = _coerce(getattr(s, name), kind)
        if msg:
            problems.append((name, msg))
        else:
            out[name] = arr
    if problems:
        raise SnapshotError(problems)
    L = out["level_ratio"].shape[1] if out["level_ratio"].ndim == 2 else -1
    for name, (shape, kind, cons) in _LEVEL_SPEC.items():
        arr = out[name]
        want = (n, L) if len(shape) == 2 else (n,)
        if arr.shape != want or (len(shape) == 2 and L < 1):
            sym = "[" + ", ".join(shape) + "]"
            concrete = f" = {list(want)}" if L >= 1 else ""  # L is level_ratio's count of levels
            problems.append((name, f"expected shape {sym}{concrete} with L >= 1 (the levels of level_ratio), "
                                   f"got {list(arr.shape)}"))
            continue
        bad = ~np.isfinite(arr)
        if bad.any():
            problems.append((name, f"must be finite, got {arr[bad].flat[0].item()!r} at {_where(bad)}"))
        elif cons == "pos" and (arr <= 0).any():
            problems.append((name, f"must be > 0, got {arr[arr <= 0].flat[0].item()!r} at {_where(arr <= 0)}"))
        elif cons == "nonneg" and (arr < 0).any():
            problems.append((name, f"must be >= 0, got {arr[arr < 0].flat[0].item()!r} at {_where(arr < 0)}"))
        elif name == "level_ratio" and (arr > 1).any():
            problems.append((name, f"must be <= 1 (a ratio of data_bits), got {arr[arr > 1].flat[0].item()!r} at {_where(arr > 1)}"))
    if problems:
        raise SnapshotError(problems)
    return out


def read_json(path: str | os.PathLike[str], error: type) -> Any:
    """Read a JSON file, turning every failure into ``error`` naming the file."""
    path = Path(path)
    text = read_text(path, error)
    if not text.strip():
        raise error([(str(path), "empty file, expected a JSON object")])
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error([(str(path), f"invalid JSON: {exc}")]) from None
    except RecursionError:
        raise error([(str(path), "invalid JSON: nested too deeply")]) from None


def _coerce(value: Any, kind: str) -> tuple[np.ndarray, str]:
    """Turn lists or arrays into a fresh numpy array of the field's kind, or explain why not."""
    try:
        if isinstance(value, (str, bytes, dict)) or value is None:
            raise TypeError
        arr = np.array(value)
    except TypeError:
        return np.empty(0), f"expected an array of {_KIND_NAME[kind]}, got {type(value).__name__}"
    except ValueError:
        return np.empty(0), f"expected a rectangular array of {_KIND_NAME[kind]}"
    except RecursionError:
        return np.empty(0), "nested too deeply"
    if arr.dtype == object and arr.ndim and all(_is_plain_number(x) for x in arr.flat):
        # an integer past int64 (JSON has no limit) makes an object array: it was "expected a
        # rectangular array", of a rectangular array. A number field takes it as a float.
        big = next(x for x in arr.flat if isinstance(x, int) and not -2**63 <= x < 2**63)
        if kind == "f":
            try:
                return np.array(value, dtype=np.float64), ""
            except OverflowError:
                return arr, "expected numbers, got an integer past the largest float (about 1.8e308)"
        try:
            text = f"the integer {float(big):.3g}"
        except OverflowError:
            text = "an integer past the largest float"
        return arr, f"expected {_KIND_NAME[kind]}, got {text}"
    if arr.dtype == object or arr.dtype.kind in "USV":
        return arr, f"expected a rectangular array of {_KIND_NAME[kind]}"
    if arr.size == 0:   # an empty list has no dtype of its own (numpy: float); its size is checked later
        return arr.astype({"f": np.float64, "i": np.int64, "b": bool}[kind]), ""
    if kind == "b":
        if arr.dtype.kind == "b":
            return arr.astype(bool), ""
        if arr.dtype.kind in "iu" and np.isin(arr, (0, 1)).all():
            return arr.astype(bool), ""
        return arr, "expected booleans (true/false)"
    if arr.dtype.kind == "b" or (not isinstance(value, np.ndarray) and holds_bool(value)):
        return arr, f"expected {_KIND_NAME[kind]}, got booleans"
    if kind == "i":
        if arr.dtype.kind in "iu":
            return arr.astype(np.int64), ""
        if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all() and (np.abs(arr) < 2**62).all():
            return arr.astype(np.int64), ""
        return arr, "expected integer server indices"
    if arr.dtype.kind not in "iuf":
        return arr, f"expected {_KIND_NAME[kind]}, got dtype {arr.dtype}"
    with np.errstate(over="ignore"):
        return arr.astype(np.float64), ""


_KIND_NAME = {"f": "numbers", "i": "integer server indices", "b": "booleans"}


def _is_plain_number(x: Any) -> bool:
    """An int or float (Python or numpy), not a bool: what a JSON number reads as."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _majority(sizes: list[int]) -> int:
    """The most common size (ties: the first seen); -1 if none."""
    if not sizes:
        return -1
    counts: dict[int, int] = {}
    for v in sizes:
        counts[v] = counts.get(v, 0) + 1
    return max(counts, key=lambda v: counts[v])


def _where(mask: np.ndarray) -> str:
    idx = np.argwhere(mask)[0]
    return "index " + ",".join(str(int(i)) for i in idx)


assert tuple(f.name for f in dataclasses.fields(Snapshot)) == FIELDS
