"""The scenario: every parameter of docs/model.md, section 8, typed, documented and validated.

A :class:`Scenario` is immutable. ``Scenario.paper(**overrides)`` is the default reconstruction;
``Scenario.load(path)`` / ``scenario.save(path)`` read and write TOML or JSON (a flat table of the
fields below). Any unknown key, wrong type, non-finite or out-of-range value raises a
:class:`~wdtnopt.errors.ScenarioError` that names the key and the expected form.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ScenarioError, key_name
from .io import atomic_write_text, read_text
from .wording import counted

_INF = math.inf


def _param(default: Any, doc: str, lo: float = -_INF, hi: float = _INF, *,
           lo_open: bool = False, hi_open: bool = False) -> Any:
    """A scenario field with its documentation and valid range (closed unless said open)."""
    return field(default=default, metadata={"doc": doc, "lo": lo, "hi": hi,
                                            "lo_open": lo_open, "hi_open": hi_open})


@dataclass(frozen=True)
class Scenario:
    """Parameters of a WDTN run (SI units; the defaults are docs/model.md, section 8)."""

    # -- entities and time ---------------------------------------------------------------------
    n_mus: int = _param(30, "number of mobile users N", 1, 1_000_000)
    n_bss: int = _param(5, "number of base stations / edge servers M", 1, 10_000)
    area_m: float = _param(1000.0, "side of the square service area (m)", 1, 1e6)
    slot_s: float = _param(0.5, "slot length tau (s)", 0, 3600, lo_open=True)
    frame_slots: int = _param(10, "slots per frame K; placement changes only at frame starts", 1, 1_000_000)
    # -- mobility (Gauss-Markov) ---------------------------------------------------------------
    gm_memory: float = _param(0.8, "Gauss-Markov memory a, in [0, 1]", 0, 1)
    speed_mean_mps: float = _param(5.0, "mean speed (m/s)", 0, 1000)
    speed_std_mps: float = _param(1.0, "speed deviation s_v (m/s)", 0, 1000)
    heading_std_rad: float = _param(math.pi / 8, "heading deviation s_h (rad)", 0, 10)
    # -- requests and workload -----------------------------------------------------------------
    request_prob: float = _param(0.5, "probability lam that a MU requests a sync in a slot", 0, 1)
    data_bits_min: float = _param(0.5e6, "raw sync data, lower end of the uniform range (bit)", 0, 1e12, lo_open=True)
    data_bits_max: float = _param(1.5e6, "raw sync data, upper end of the uniform range (bit)", 0, 1e12, lo_open=True)
    compression_ratio: float = _param(0.6, "semantic compression rho: data sent = rho * raw (calibrated, docs/model.md)", 0, 1, lo_open=True)
    cycles_per_bit_min: float = _param(100.0, "DT update work, lower end (cycles/bit)", 0, 1e9, lo_open=True)
    cycles_per_bit_max: float = _param(300.0, "DT update work, upper end (cycles/bit)", 0, 1e9, lo_open=True)
    dt_size_bits_min: float = _param(100e6, "DT size, lower end (bit)", 0, 1e15, lo_open=True)
    dt_size_bits_max: float = _param(300e6, "DT size, upper end (bit)", 0, 1e15, lo_open=True)
    deadline_s: float = _param(0.2, "sync deadline (s)", 0, 3600, lo_open=True)
    # -- radio ---------------------------------------------------------------------------------
    pathloss_db_1km: float = _param(128.1, "path loss at 1 km (dB)", 0, 400)
    pathloss_slope_db: float = _param(37.6, "path loss per decade of distance (dB)", 0, 200)
    d_min_m: float = _param(10.0, "distance floor of the path-loss law (m)", 0, 1e6, lo_open=True)
    rician_k: float = _param(3.0, "Rician K-factor (linear, 0 = Rayleigh)", 0, 1e6)
    noise_psd_dbm_hz: float = _param(-174.0, "thermal noise PSD (dBm/Hz)", -300, 0)
    noise_figure_db: float = _param(7.0, "receiver noise figure (dB)", 0, 100)
    bandwidth_hz: float = _param(20e6, "uplink band W_m of each BS (Hz)", 0, 1e12, lo_open=True)
    p_max_w: float = _param(0.2, "MU transmit power cap (W)", 0, 1e3, lo_open=True)
    interference_zeta: float = _param(0.1, "co-channel interference factor zeta", 0, 1e3)
    interference_p_ref_w: float = _param(0.1, "reference power of interferers p_ref (W)", 0, 1e3)
    # -- the 6G layer (docs/model.md, section 13); every option is off by default -----
    thz_carrier_hz: float = _param(0.0, "THz carrier (Hz): 0 = the macro law above, else 100e9-450e9 (free space + molecular absorption)", 0, 450e9)
    thz_temperature_k: float = _param(296.0, "air temperature of the THz absorption model (K)", 150, 350)
    thz_relative_humidity: float = _param(0.5, "relative humidity of the THz absorption model (fraction)", 0, 1)
    thz_pressure_pa: float = _param(101_325.0, "air pressure of the THz absorption model (Pa)", 0, 2e5, lo_open=True)
    thz_tx_gain_dbi: float = _param(20.0, "THz transmit (MU) antenna gain (dBi)", -50, 80)
    thz_rx_gain_dbi: float = _param(20.0, "THz receive (BS) antenna gain (dBi)", -50, 80)
    thz_los_decay_m: float = _param(0.0, "THz LOS probability exp(-d / L): L (m); 0 = always LOS", 0, 1e6)
    thz_blockage_db: float = _param(30.0, "extra THz loss of a blocked (non-LOS) link (dB)", 0, 300)
    ris_elements: int = _param(0, "elements of the RIS beside each BS (0 = no RIS)", 0, 100_000_000)
    ris_offset_m: float = _param(50.0, "distance of each BS's RIS from the BS, towards the area centre (m)", 0, 1e6, lo_open=True)
    ris_carrier_hz: float = _param(3.5e9, "carrier that sizes RIS elements ((lambda/2)^2) under the macro law (Hz), "
                                   "100 MHz to 10 THz", 1e8, 1e13)
    semantic_levels: int = _param(0, "semantic compression levels per MU (0 = no menu: every sync sends data_bits)", 0, 64)
    semantic_ratio_min: float = _param(0.25, "ratio rho of the deepest level; level l sends rho_min^(l/(L-1)) of data_bits", 0, 1, lo_open=True)
    semantic_cycles_per_bit: float = _param(5.0, "MU extraction cycles per data bit at the deepest level (linear in l)", 0, 1e9)
    semantic_accuracy_loss: float = _param(0.1, "task accuracy lost at the deepest level (a_l = 1 - loss l/(L-1))", 0, 1)
    semantic_min_accuracy: float = _param(0.0, "minimum task accuracy of every MU (restricts the menu)", 0, 1)
    mu_cpu_hz: float = _param(1e9, "MU CPU frequency for semantic extraction (cycles/s)", 0, 1e12, lo_open=True)
    mu_kappa: float = _param(1e-28, "MU switched capacitance kappa: extraction energy kappa cycles f^2 (J s^2/cycle^3)", 0, 1e-18)
    # -- edge servers and backhaul -------------------------------------------------------------
    cpu_hz: float = _param(10e9, "CPU of each edge server (cycles/s)", 0, 1e15, lo_open=True)
    storage_factor: float = _param(1.5, "storage per server = ceil(factor * N / M) DTs of the largest size", 0, 1e6, lo_open=True)
    hop_distance_m: float = _param(400.0, "backhaul hops between BSs = ceil(distance / this) (m)", 1, 1e6)
    hop_latency_s: float = _param(0.01, "backhaul latency per hop (s)", 0, 3600)
    hop_rate_bps: float = _param(500e6, "backhaul rate per hop (bit/s)", 1, 1e15)
    # -- objectives ----------------------------------------------------------------------------
    eps: float = _param(0.05, "target long-run failure ratio per MU", 0, 1)
    energy_ref_j: float = _param(0.01, "energy reference E_ref of the team reward (J)", 0, 1e6, lo_open=True)
    eta: float = _param(1.0, "reward weight of a failure (units of E_ref)", 0, 1e6)
    # -- edge-server availability and self-healing (docs/model.md, section 12) ---------
    server_mtbf_s: Any = _param(0.0, "mean time between failures of each edge server (s): one number, or one per server [M]; 0 = never fails", 0, 1e12)
    server_mttr_s: Any = _param(50.0, "mean time to repair a failed edge server (s): one number, or one per server [M]", 0, 1e12, lo_open=True)
    self_healing: int = _param(1, "1: a DT whose server fails is restored from its backup on another server; 0: it waits for the repair", 0, 1)
    failure_detection_s: float = _param(1.0, "time from a server failure to the start of its DTs' restore (s)", 0, 3600)
    backup_site: int = _param(0, "where DT backups live: 0 = the server nearest the DT's host, 1 = the backhaul centre", 0, 1)
    background_load_mean: float = _param(0.0, "mean share of each server's CPU taken by exogenous load", 0, 0.95)
    background_load_std: float = _param(0.0, "deviation of the background load share (AR(1))", 0, 1)
    background_load_memory: float = _param(0.9, "AR(1) memory of the background load per slot, in [0, 1]", 0, 1)

    def __post_init__(self) -> None:
        problems = _check_fields(self)
        if not problems:
            for lo, hi in (("data_bits_min", "data_bits_max"), ("cycles_per_bit_min", "cycles_per_bit_max"),
                           ("dt_size_bits_min", "dt_size_bits_max")):
                if getattr(self, lo) > getattr(self, hi):
                    problems.append((lo, f"must be <= {hi} ({getattr(self, hi)!r}), got {getattr(self, lo)!r}"))
            if not problems:
                # every seed's DTs are at least dt_size_bits_min: servers that cannot hold N of those
                # together cannot hold the DTs of any trace (refused here, not at generate_trace).
                # Counted in floats: at the ends of the fields' ranges the size ratio passes the float
                # range and reads as room for any number of DTs (int() of it overflowed)
                share = self.storage_factor * self.n_mus / self.n_bss
                room = math.ceil(share) if math.isfinite(share) else math.inf
                ratio = self.dt_size_bits_max / self.dt_size_bits_min if self.dt_size_bits_min > 0 else math.inf
                per_f = room * ratio * (1 + 1e-12)
                if per_f * self.n_bss < self.n_mus:   # then per_f < n_mus / n_bss is finite
                    per = math.floor(per_f)
                    problems.append(("storage_factor", f"every server holds at most {counted(per, 'DT')} (room for "
                                     f"ceil(storage_factor N / M) = {room} of the largest size), "
                                     f"{per * self.n_bss} in all, fewer than n_mus = {self.n_mus} even at the "
                                     f"smallest size; expected a larger storage_factor, got {self.storage_factor!r}"))
            if 0 < self.thz_carrier_hz < 100e9:
                problems.append(("thz_carrier_hz", f"must be 0 (off) or in [1e+11, 4.5e+11] Hz (the absorption "
                                                   f"model's range), got {self.thz_carrier_hz!r}"))
            if self.thz_carrier_hz > 0:
                from .processes.channels import water_vapor_mixing_ratio
                mu = water_vapor_mixing_ratio(self.thz_temperature_k, self.thz_relative_humidity, self.thz_pressure_pa)
                if mu > 1:
                    problems.append(("thz_pressure_pa", f"must exceed the water vapour pressure "
                                                        f"{mu * self.thz_pressure_pa:.6g} Pa at thz_temperature_k and "
                                                        f"thz_relative_humidity (a volume mixing ratio above 1), "
                                                        f"got {self.thz_pressure_pa!r}"))
        if problems:
            raise ScenarioError(problems)

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def paper(cls, **overrides: Any) -> "Scenario":
        """The default scenario of docs/model.md, section 8, with any field overridden by keyword.

        Parameters
        ----------
        **overrides
            Scenario fields by name (``n_mus=50``, ``cpu_hz=5e9``, ...), SI units.

        Returns
        -------
        Scenario

        Raises
        ------
        ScenarioError
            Naming every unknown field and every value of the wrong type or out of its range.
        """
        return cls.from_dict(overrides)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scenario":
        """Build from a flat mapping; unknown keys and bad values raise ``ScenarioError``."""
        if not isinstance(data, dict):
            raise ScenarioError([("<root>", f"expected a table of parameters, got {type(data).__name__}")])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted((key_name(k) for k in set(data) - known), key=str)
        if unknown:
            raise ScenarioError([(k, "unknown parameter (see `wdtnopt.Scenario` for the list)") for k in unknown])
        return cls(**data)

    @classmethod
    def load(cls, path: str | os.PathLike[str], **overrides: Any) -> "Scenario":
        """Read a TOML (``.toml``) or JSON (any other suffix) file of parameters.

        Parameters
        ----------
        path : str or os.PathLike
            A flat table of scenario fields; missing fields keep their defaults.
        **overrides
            Fields that replace the file's before it is checked (``n_bss=3`` with per-server
            lists of 3 values in the file, as ``--n-bss`` of the command line).

        Returns
        -------
        Scenario

        Raises
        ------
        ScenarioError
            If the file cannot be read or parsed, or names an unknown field or a bad value.
        """
        data = _read_table(Path(path))
        return cls.from_dict({**data, **overrides} if overrides and isinstance(data, dict) else data)

    def to_dict(self) -> dict[str, Any]:

        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write TOML (``.toml``) or JSON (any other suffix), atomically."""
        path = Path(path)
        if path.suffix.lower() == ".toml":
            lines = [f"{k} = {_toml_value(v)}" for k, v in self.to_dict().items()]
            text = "# wdtnopt scenario (SI units)\n" + "\n".join(lines) + "\n"
        else:
            text = json.dumps(self.to_dict(), indent=2) + "\n"
        atomic_write_text(path, text)

    def replace(self, **changes: Any) -> "Scenario":
        return self.from_dict({**self.to_dict(), **changes})

    # -- derived quantities --------------------------------------------------------------------
    @property
    def noise_psd_w_hz(self) -> float:
        """Thermal noise PSD including the noise figure (W/Hz)."""
        return 10 ** ((self.noise_psd_dbm_hz + self.noise_figure_db - 30) / 10)

    @property
    def storage_bits(self) -> float:
        """Storage of each server: room for ceil(storage_factor * N / M) DTs of the largest size."""
        return math.ceil(self.storage_factor * self.n_mus / self.n_bss) * self.dt_size_bits_max

    @property
    def server_failures(self) -> bool:
        """Whether edge servers fail (some ``server_mtbf_s > 0``)."""
        return bool(np.any(np.asarray(self.server_mtbf_s) > 0))

    @property
    def server_availability(self) -> Any:
        """Long-run share of time a server is up, ``A = MTBF / (MTBF + MTTR)`` (1 where a server never
        fails): a float, or a tuple of M floats when MTBF or MTTR is given per server."""
        b, r = np.asarray(self.server_mtbf_s, float), np.asarray(self.server_mttr_s, float)
        a = np.where(b > 0, b / np.where(b > 0, b + r, 1.0), 1.0)
        return float(a) if a.ndim == 0 else tuple(float(v) for v in a)

    def server_mtbf_mttr_s(self) -> tuple[np.ndarray, np.ndarray]:
        """``(MTBF [M], MTTR [M])`` of every server (s), scalars broadcast (docs/model.md, section 12)."""
        m = self.n_bss
        return (np.broadcast_to(np.asarray(self.server_mtbf_s, float), (m,)).copy(),
                np.broadcast_to(np.asarray(self.server_mttr_s, float), (m,)).copy())

    @property
    def failure_price(self) -> float:
        """The eta-weighted failure price of docs/model.md, section 7 in joules (eta * E_ref)."""
        return self.eta * self.energy_ref_j

    @classmethod
    def describe(cls) -> list[tuple[str, Any, str]]:
        """(name, default, doc) of every parameter, for help texts and docs."""
        return [(f.name, f.default, f.metadata["doc"]) for f in dataclasses.fields(cls)]


PER_SERVER_FIELDS = ("server_mtbf_s", "server_mttr_s")
"""Fields that take one number for every server or a list of one per server (length ``n_bss``)."""


def _check_fields(sc: Scenario) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for f in dataclasses.fields(sc):
        value = getattr(sc, f.name)
        meta = f.metadata
        if f.name in PER_SERVER_FIELDS and isinstance(value, (list, tuple, np.ndarray)):
            problems += _check_per_server(sc, f.name, value, meta)
            continue
        want_int = isinstance(f.default, int) and not isinstance(f.default, bool)
        if isinstance(value, (np.integer, np.floating)):   # numpy scalars (np.arange sweeps) are numbers too
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = "an integer" if want_int else "a number"
            problems.append((f.name, f"expected {kind}, got {type(value).__name__} {value!r}"))
            continue
        if want_int and not (isinstance(value, int) or float(value).is_integer()):
            problems.append((f.name, f"expected an integer, got {value!r}"))
            continue
        if not math.isfinite(value):
            problems.append((f.name, f"must be finite, got {value!r}"))
            continue
        lo, hi = meta["lo"], meta["hi"]
        below = value <= lo if meta["lo_open"] else value < lo
        above = value >= hi if meta["hi_open"] else value > hi
        if below or above:
            left = "(" if meta["lo_open"] else "["
            right = ")" if meta["hi_open"] else "]"
            problems.append((f.name, f"must lie in {left}{lo:g}, {hi:g}{right} ({meta['doc']}), got {value!r}"))
            continue
        # normalize: ints stay ints, floats become floats (JSON may give 20000000 for a float)
        object.__setattr__(sc, f.name, int(value) if want_int else float(value))
    return problems


def _check_per_server(sc: Scenario, name: str, value: Any, meta: dict[str, Any]) -> list[tuple[str, str]]:
    """Validate a per-server list (one number per server, each in the field's range); store a tuple."""
    items = list(np.asarray(value, dtype=object).ravel()) if isinstance(value, np.ndarray) else list(value)
    m = sc.n_bss if isinstance(sc.n_bss, int) else None
    want = f"one number or a list of n_bss = {m} numbers"
    if (isinstance(value, np.ndarray) and value.ndim != 1) or (m is not None and len(items) != m):
        return [(name, f"expected {want}, got {len(items)} values")]
    out = []
    lo, hi = meta["lo"], meta["hi"]
    for i, v in enumerate(items):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
            return [(name, f"expected {want}, got {v!r} at index {i}")]
        if (v <= lo if meta["lo_open"] else v < lo) or v > hi:
            left = "(" if meta["lo_open"] else "["
            return [(name, f"every value must lie in {left}{lo:g}, {hi:g}] ({meta['doc']}), got {v!r} at index {i}")]
        out.append(float(v))
    object.__setattr__(sc, name, tuple(out))
    return []


def _toml_value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


def _read_table(path: Path) -> Any:
    """The parsed contents of a scenario file (TOML by suffix, else JSON); a ``[scenario]`` table
    alone is unwrapped. Unparsable files raise ``ScenarioError`` naming the file."""
    text = read_text(path, ScenarioError)
    if path.suffix.lower() == ".toml":
        import tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError([(str(path), f"invalid TOML: {exc}")]) from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError([(str(path), f"invalid JSON: {exc}")]) from None
    if isinstance(data, dict) and isinstance(data.get("scenario"), dict) and len(data) == 1:
        data = data["scenario"]  # a [scenario] table is accepted too
    return data
