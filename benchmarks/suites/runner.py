"""Run a suite as a set of pure tasks keyed by their config, resumable, local or on Dask.

A task is ``(function, config)``: ``function`` a ``"module:attribute"`` path (so the task pickles
to any worker by name), ``config`` a JSON-ready dict holding *everything* the result depends on
(suite, kind, seed, sizes...). Its key is a stable hash of both, and its result is written
atomically to ``OUT/tasks/<key>.json`` in the driver the moment it arrives; a rerun loads every
file whose key it asks for and executes only the missing tasks, so a killed run loses no finished
task. Trained agents go to ``OUT/agents/<key>/``. All execution goes through
:func:`wdtnopt.parallel.map_tasks` (local processes by default, a Dask cluster with
``scheduler=``), and a task's numbers do not depend on where it ran (each task seeds everything it
uses and runs torch on one thread).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
import tomllib
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any, Callable

from wdtnopt.errors import WdtnoptError
from wdtnopt.io import atomic_write_json

PRESETS = ("smoke", "default", "full")
# preset keys that name an input file (paper: a replayed mobility file; mobility: an FCD file)
FILE_KEYS = ("mobility", "fcd")
OPTIONAL_KEYS: dict[str, dict[str, Any]] = {
    "paper": {"lyapunov_V": 1.0, "lyapunov_theta": 1.0},
    "mobility": {"lyapunov_V": 1.0, "lyapunov_theta": 1.0},
    # solvers.py reads these with defaults (snapshots ["paper"], sizes: n_grid x m_grid, fast_gap:
    # gap, time_limit 0 = none); the `loaded` presets set them
    "solvers": {"snapshots": ["paper"], "sizes": ["NxM"], "fast_gap": 1.0, "time_limit": 1.0},
    # scaling.py: the `loaded` presets' keys (snapshots "paper", time_limit and scip_cap 60 s,
    # scip_max_n 0: no SCIP rows; scaling.LOADED_DEFAULTS)
    "scaling": {"snapshots": "paper", "time_limit": 1.0, "scip_cap": 1.0, "scip_max_n": 0},
}
"""Keys a preset file may set that the presets ``smoke``, ``default`` and ``full`` leave out
(absent: the code's default, e.g. the Lyapunov scheduler's own ``V`` and ``theta``,
:func:`lyapunov_settings`), each with a value of its TOML type (only the type is used: a value of
another type is refused naming the key; the suite's ``check`` then checks the value)."""
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
TASK_FORMAT = "wdtnopt-bench-task-v1"


@dataclass(frozen=True)
class Task:
    """One pure unit of work: ``function(config, workdir)`` returns a JSON-ready dict."""

    function: str                 # "module:attribute"
    config: dict[str, Any]

    @property
    def key(self) -> str:
        return task_key(self.function, self.config)


def task_key(function: str, config: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of ``(function, config)``."""
    text = json.dumps({"function": function, "config": config}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def input_file(where: str, name: str) -> dict[str, str]:
    """A task's input file: its absolute path and the SHA-256 of its bytes (64 hex digits).

    Both enter the task's config, so an edited file gives new task keys (a result is never reused
    for other inputs) and a file moved elsewhere does too. The path is resolved from the current
    folder (a preset file's names were made absolute by :func:`load_config`).

    Raises
    ------
    WdtnoptError
        ``name`` is not a readable file (``where`` names the preset key).
    """
    path = Path(name).resolve()
    try:
        with open(path, "rb") as fh:       # in chunks: an FCD file can be gigabytes
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        raise WdtnoptError(f"{where}: expected a readable file, got {name!r} ({exc.strerror})") from None
    return {"path": str(path), "sha256": digest}


# -- presets ---------------------------------------------------------------------------------------
def load_config(suite: str, preset: str | os.PathLike[str]) -> dict[str, Any]:
    """The config of ``suite`` for ``preset``: a preset name, or a TOML file of overrides.

    A file is read on top of the ``default`` preset (or of the preset it names with
    ``base = "smoke"``); a key that the suite does not know is an error naming it.
    """
    presets = _presets(suite)
    name = str(preset)
    if name in presets:
        return dict(presets[name])
    path = Path(name)
    if not path.is_file():
        raise WdtnoptError(f"preset: expected one of {', '.join(presets)} or a TOML file, got {name!r}")
    try:
        overrides = tomllib.loads(path.read_text(encoding="utf-8-sig"))   # a BOM is dropped
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WdtnoptError(f"preset {path}: not valid TOML ({exc})") from None
    overrides.pop("suite", None)
    if "preset" in overrides:   # the loader writes it (the preset read and the file): never the file's own
        raise WdtnoptError(f"preset {path}: preset: not a key of the file; name the preset it starts from "
                           f"with base = \"smoke\" (one of {', '.join(presets)})")
    # base = "NAME" names the preset to start from; a [base] table is the suite's own key of that
    # name where its presets have one (sixg: the scenario overrides of every task)
    base = "default" if isinstance(overrides.get("base"), dict) else overrides.pop("base", "default")
    if not isinstance(base, str) or base not in presets:
        raise WdtnoptError(f"preset {path}: base: expected one of {', '.join(presets)}, got {base!r}")
    cfg = dict(presets[base])
    optional = OPTIONAL_KEYS.get(suite, {})
    unknown = sorted(set(overrides) - set(cfg) - set(optional))
    if unknown:
        raise WdtnoptError(f"preset {path}: unknown key(s) {', '.join(unknown)} for suite {suite!r}; "
                           f"known: {', '.join(sorted((set(cfg) | set(optional)) - {'preset'}))}")
    for key, value in overrides.items():
        if key in cfg:
            _check_like(f"preset {path}: {key}", value, cfg[key])
        else:
            _check_like(f"preset {path}: {key}", value, optional[key], as_in="")
        if key in FILE_KEYS and value and not value.startswith("sumo-grid"):
            # a relative file name in a preset file is relative to that file (not the current folder)
            overrides[key] = str((path.parent / value).resolve())
    cfg.update(overrides)
    cfg["preset"] = f"{base}+{path.name}"
    return cfg


def lyapunov_settings(cfg: dict[str, Any]) -> tuple[float, float]:
    """``(V, theta)`` of the Lyapunov scheduler for a suite config: its ``lyapunov_V`` and
    ``lyapunov_theta`` where set, else :class:`~wdtnopt.policies.lyapunov.LyapunovPolicy`'s defaults
    (so a change of those reaches the suites, and the tasks' keys, which hold the values)."""
    import inspect

    from wdtnopt.policies.lyapunov import LyapunovPolicy

    params = inspect.signature(LyapunovPolicy).parameters
    return (float(cfg.get("lyapunov_V", params["V"].default)),
            float(cfg.get("lyapunov_theta", params["theta"].default)))


# -- up-front checks (docs/benchmarks.md, "Checks before any task runs") ----------------------------
def _refuse(field: str, expected: str, got: Any) -> None:
    raise WdtnoptError(f"preset: {field}: expected {expected}, got {got!r}")


def check_choices(field: str, values: Any, allowed: Any) -> None:
    """Every entry of ``values`` (a list, or one value) is one of ``allowed``; else one line naming
    ``field`` and the allowed values."""
    allowed = list(allowed)
    for v in values if isinstance(values, list) else [values]:
        if not isinstance(v, str) or v not in allowed:
            _refuse(field, f"one of {', '.join(map(str, allowed))}", v)


def check_counts(cfg: dict[str, Any], keys: Any, lo: int = 1) -> None:
    """Each of ``keys`` present in ``cfg`` (an integer, or a list of integers) is an integer >= ``lo``."""
    for key in keys:
        if key not in cfg:
            continue
        for v in cfg[key] if isinstance(cfg[key], list) else [cfg[key]]:
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                _refuse(key, f"integers >= {lo}" if isinstance(cfg[key], list) else f"an integer >= {lo}", v)


def check_policies(field: str, names: Any) -> None:
    """Names of policies of ``wdtnopt.simulate``: registered names, ``checkpoint:DIR`` or
    ``pretrained:ALGO`` (those two are built now, so a missing folder or agent is named too)."""
    from wdtnopt.policies import make_policy, policy_names

    registered = [n for n in policy_names() if ":" not in n]
    for name in names if isinstance(names, list) else [names]:
        if isinstance(name, str) and name.partition(":")[0] in ("checkpoint", "pretrained") and ":" in name:
            try:
                make_policy(name)
            except WdtnoptError as exc:
                raise WdtnoptError(f"preset: {field}: {exc}") from None
        elif not isinstance(name, str) or name not in registered:
            _refuse(field, f"policy names, one of {', '.join(registered)} (or checkpoint:DIR, pretrained:ALGO)", name)


def check_method(field: str, name: Any) -> None:
    """A snapshot method registered with ``wdtnopt.solve`` (e.g. the hindsight bound's inner method)."""
    from wdtnopt.solvers import methods

    check_choices(field, name, sorted(methods()))


def check_agent(algo_field: str, algo: Any, config_field: str, overrides: Any,
                variants: dict[str, dict[str, dict[str, Any]]] | None = None) -> None:
    """A learned agent: ``algo`` an algorithm of ``wdtnopt train`` (``ALGO:VARIANT`` where
    ``variants`` are given), ``overrides`` a config it accepts (checked as :class:`Trainer` checks
    it, without building anything)."""
    from wdtnopt.agents.registry import ALGORITHMS, algorithm_class, make_config

    variants = variants or {}
    name, _, variant = algo.partition(":") if isinstance(algo, str) else (algo, "", "")
    allowed = list(ALGORITHMS) + [f"{a}:{v}" for v, table in variants.items() for a in table]
    if name not in ALGORITHMS or (variant and (variant not in variants or name not in variants[variant])):
        _refuse(algo_field, f"one of {', '.join(allowed)}", algo)
    if not isinstance(overrides, dict):
        _refuse(config_field, "a table of agent config options", overrides)
    try:
        make_config(algorithm_class(name), {**(variants[variant][name] if variant else {}), **overrides})
    except WdtnoptError as exc:
        raise WdtnoptError(f"preset: {config_field} (for {algo}): {exc}") from None


def check_number(field: str, value: Any, expected: str, *, positive: bool = False) -> None:
    """``value`` a finite number >= 0 (> 0 with ``positive``; a bool is not a number:
    :func:`wdtnopt.fieldtypes.is_finite_number`); else one line naming ``field`` and ``expected``."""
    from wdtnopt.fieldtypes import is_finite_number

    if not is_finite_number(value, positive=positive):
        _refuse(field, expected, value)


def check_lyapunov(cfg: dict[str, Any]) -> None:
    """``lyapunov_V`` a finite number > 0 and ``lyapunov_theta`` a finite number >= 0, where set: the
    rule :class:`~wdtnopt.policies.lyapunov.LyapunovPolicy` applies to its ``V`` and ``theta``
    (:func:`wdtnopt.fieldtypes.is_finite_number`)."""
    if cfg.get("lyapunov_V") is not None:
        check_number("lyapunov_V", cfg["lyapunov_V"], "a finite number > 0", positive=True)
    if cfg.get("lyapunov_theta") is not None:
        check_number("lyapunov_theta", cfg["lyapunov_theta"], "a finite number >= 0")


def check_scenarios(field: str, overrides: Any) -> None:
    """Each of ``overrides`` (dicts of ``Scenario.paper`` keywords) makes a valid scenario."""
    from wdtnopt import Scenario

    for over in overrides:
        try:
            Scenario.paper(**over)
        except WdtnoptError as exc:
            raise WdtnoptError(f"preset: {field}: {exc}") from None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "an integer" if isinstance(value, int) else "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a table" if isinstance(value, dict) else type(value).__name__


def _check_like(where: str, value: Any, like: Any, as_in: str = " as in the preset") -> None:
    """Raise unless ``value`` has the TOML type of the preset's ``like`` (an integer where a number is);
    ``as_in`` follows the expected type in the message (empty for a key the preset leaves out)."""
    want, got = _kind(like), _kind(value)
    if want != got and not (want == "a number" and got == "an integer"):
        raise WdtnoptError(f"{where}: expected {want}{as_in}, got {value!r}")
    if isinstance(like, list) and like and isinstance(value, list):
        for item in value:
            _check_like(where + " item", item, like[0], as_in)


def _presets(suite: str) -> dict[str, dict[str, Any]]:
    path = CONFIG_DIR / f"{suite}.toml"
    if not path.is_file():
        raise WdtnoptError(f"suite: no presets for {suite!r} ({path} missing)")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out = {}
    for name in PRESETS:
        if name not in data:
            raise WdtnoptError(f"{path}: missing preset [{name}]")
        out[name] = {**data[name], "preset": name}
    for name, table in data.items():   # a suite's own presets beside the three every suite has
        if isinstance(table, dict) and name not in out:
            out[name] = {**table, "preset": name}
    return out


# -- execution -------------------------------------------------------------------------------------
def execute(item: tuple[str, dict[str, Any], str, str]) -> dict[str, Any]:
    """Run one task in a worker: ``(function, config, key, out_dir)`` -> its result record."""
    function, config, key, out = item
    module, attr = function.split(":")
    fn: Callable[[dict[str, Any], Path], dict[str, Any]] = getattr(import_module(module), attr)
    t0 = time.perf_counter()
    result = fn(config, Path(out) / "agents" / key)
    return {"format": TASK_FORMAT, "key": key, "function": function, "config": config, "result": result,
            "elapsed_s": time.perf_counter() - t0, "host": platform.node(), "pid": os.getpid(),
            "code": code_fingerprint()}


_FINGERPRINT: str | None = None


def code_fingerprint() -> str:
    """SHA-256 (12 hex digits) of the installed wdtnopt sources that a task result depends on.

    Keys do not include it (a rerun after a doc fix must not redo a day of work), so the reports
    say when the tasks they render were computed by different code.
    """
    global _FINGERPRINT
    if _FINGERPRINT is None:
        import wdtnopt
        import wdtnopt.formulations
        import wdtnopt.solvers

        h = hashlib.sha256()
        for pkg in (wdtnopt, wdtnopt.solvers, wdtnopt.formulations):
            root = Path(pkg.__file__).parent
            for f in sorted(root.rglob("*.py")):
                if "cli" in f.relative_to(root).parts:
                    continue
                h.update(str(f.relative_to(root)).encode())
                h.update(f.read_bytes())
        _FINGERPRINT = h.hexdigest()[:12]
    return _FINGERPRINT


def code_versions(records: list[dict[str, Any]]) -> dict[str, int]:
    """How many of ``records`` each code fingerprint computed ("unknown" for older records)."""
    out: dict[str, int] = {}
    for r in records:
        out[r.get("code", "unknown")] = out.get(r.get("code", "unknown"), 0) + 1
    return out


def read_task(path: Path, key: str) -> dict[str, Any] | None:
    """A finished task's record, or None if absent or not a complete record of that key."""
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("format") != TASK_FORMAT or rec.get("key") != key or "result" not in rec:
        return None
    return rec


@dataclass
class SuiteRun:
    """What a call of :func:`run_tasks` did: the records of every task it knows, by key."""

    records: dict[str, dict[str, Any]]
    executed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


def run_tasks(tasks: list[Task], out: str | os.PathLike[str], *, workers: int | None = None, scheduler: Any = None,
              limit: int | None = None, progress: bool | str = False) -> SuiteRun:
    """Execute the tasks of ``tasks`` that have no result file under ``out/tasks`` yet.

    ``limit``: execute at most this many of the missing tasks (then stop, as if killed: the rest
    stay missing). Results are written as they arrive, whatever the back end.
    """
    out = Path(out)
    task_dir = out / "tasks"   # made when the first result arrives: a run that never starts (a Dask
    #                            scheduler out of reach, an interrupt) leaves no empty folders behind
    unique: dict[str, Task] = {}
    for t in tasks:
        unique.setdefault(t.key, t)
    run = SuiteRun(records={})
    todo = []
    for key, t in unique.items():
        rec = read_task(task_dir / f"{key}.json", key)
        if rec is not None:
            run.records[key] = rec
            run.reused.append(key)
        else:
            todo.append((t.function, t.config, key, str(out)))
    if limit is not None:
        run.missing = [k for _, _, k, _ in todo[limit:]]
        todo = todo[:limit]

    def arrived(_: int, rec: dict[str, Any]) -> None:
        task_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(task_dir / f"{rec['key']}.json", rec)
        run.records[rec["key"]] = rec
        run.executed.append(rec["key"])

    if todo:
        map_tasks = import_module("wdtnopt.parallel").map_tasks
        map_tasks(execute, todo, workers=workers, scheduler=scheduler, progress=progress, on_result=arrived)
    return run


def cpu_name() -> str:
    """The processor's model name (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_info(suite: str, cfg: dict[str, Any], argv: list[str] | None = None) -> dict[str, Any]:
    """The command and machine of a run, for the report."""
    import numpy as np

    cpu = cpu_name()
    try:
        load = f"{os.getloadavg()[0]:.1f}"
    except OSError:
        load = "?"
    return {"suite": suite, "preset": cfg.get("preset"), "command": " ".join(argv if argv is not None else sys.argv),
            "machine": f"{cpu}, {os.cpu_count()} cores, load average {load} at start",
            "python": platform.python_version(), "numpy": np.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}
