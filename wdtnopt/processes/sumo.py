"""Build a SUMO grid scenario from a small spec and replay it (docs/mobility.md, section "SUMO").

Needs the optional extra ``wdtnopt[sumo]`` (the ``eclipse-sumo`` package from PyPI, which ships
SUMO's binaries and tools). :func:`build_sumo_grid` runs ``netgenerate --grid``, SUMO's
``randomTrips.py`` and ``sumo --fcd-output`` with the spec's seed, so "SUMO grid, seed 7" names a
reproducible trace; the commands are those of the test fixture's script
(tests/data/make_sumo_grid_fcd.sh) with the spec's values.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import MobilityError
from .mobility import CleaningRules, FcdFile


@dataclass(frozen=True)
class SumoGridSpec:
    """A SUMO grid scenario: road grid, random trips, simulation length."""

    grid_number: int = 5
    """Junctions per side of the square grid."""
    grid_length_m: float = 250.0
    """Distance between neighbouring junctions (m); the grid spans (grid_number - 1) * grid_length_m."""
    trip_period_s: float = 2.0
    """A new random trip every this many seconds (randomTrips.py -p)."""
    seed: int = 7
    """Seed of the network, the trips and SUMO."""
    duration_s: float = 300.0
    """Simulated time (s); trips depart in [0, duration_s)."""
    step_s: float = 0.5
    """SUMO's step length (s); equal to the scenario's slot length, slot times are SUMO's own samples."""

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.grid_number, bool) or not isinstance(self.grid_number, int) or self.grid_number < 2:
            problems.append(f"grid_number: expected an integer >= 2, got {self.grid_number!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed: expected an integer >= 0, got {self.seed!r}")
        for name in ("grid_length_m", "trip_period_s", "duration_s", "step_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1e7:
                problems.append(f"{name}: expected a number > 0, got {v!r}")
        if problems:
            raise MobilityError("invalid SUMO grid spec: " + "; ".join(problems))

    @property
    def area_m(self) -> float:
        """Side of the square the grid spans (m): the scenario's ``area_m`` to use with it."""
        return (self.grid_number - 1) * float(self.grid_length_m)


SPEC_PREFIX = "sumo-grid"


def parse_sumo_grid_spec(text: str) -> SumoGridSpec:
    """The spec named by ``sumo-grid`` or ``sumo-grid:KEY=VALUE,...`` (keys: the fields of
    :class:`SumoGridSpec`), e.g. ``sumo-grid:seed=7,duration_s=300``.

    Parameters
    ----------
    text : str
        The spec string.

    Returns
    -------
    SumoGridSpec

    Raises
    ------
    MobilityError
        Not such a string, an unknown key, or a value of the wrong form (naming the key).
    """
    head, _, rest = text.partition(":")
    if head != SPEC_PREFIX:
        raise MobilityError(f"mobility: expected 'sumo-grid[:key=value,...]', got {text!r}")
    fields = {f: type(v) for f, v in asdict(SumoGridSpec()).items()}
    values: dict[str, int | float] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in fields:
            raise MobilityError(f"mobility: {text!r}: expected key=value with key one of {', '.join(fields)}, "
                                f"got {item!r}")
        try:
            values[key] = int(value) if fields[key] is int else float(value)
        except ValueError:
            raise MobilityError(f"mobility: {text!r}: {key}: expected {'an integer' if fields[key] is int else 'a number'}, "
                                f"got {value.strip()!r}") from None
    return SumoGridSpec(**values)


def sumo_home() -> Path:
    """SUMO's installation folder (from the ``eclipse-sumo`` package, else ``$SUMO_HOME``).

    Raises
    ------
    MobilityError
        SUMO is not installed.
    """
    try:
        import sumo
        return Path(sumo.SUMO_HOME)
    except ImportError:
        pass
    env = os.environ.get("SUMO_HOME")
    if env and (Path(env) / "tools" / "randomTrips.py").is_file():
        return Path(env)
    raise MobilityError("SUMO is not installed: pip install 'wdtnopt[sumo]' (the eclipse-sumo package)")


def sumo_version() -> str:
    """Version of the installed ``eclipse-sumo`` package (or of ``sumo`` on SUMO_HOME)."""
    try:
        from importlib.metadata import version
        return version("eclipse-sumo")
    except Exception:
        out = subprocess.run([_binary("sumo"), "--version"], capture_output=True, text=True)
        return out.stdout.splitlines()[0] if out.stdout else "unknown"


def _binary(name: str) -> str:
    exe = sumo_home() / "bin" / name
    if exe.is_file():
        return str(exe)
    found = shutil.which(name)
    if found is None:
        raise MobilityError(f"SUMO's {name} binary not found: pip install 'wdtnopt[sumo]'")
    return found


def sumo_grid_commands(spec: SumoGridSpec) -> list[list[str]]:
    """The three commands (netgenerate, randomTrips.py, sumo) run in the work folder."""
    g = lambda v: f"{float(v):g}"   # noqa: E731 (numbers written as SUMO's own options read them)
    return [
        [_binary("netgenerate"), "--grid", f"--grid.number={spec.grid_number}", f"--grid.length={g(spec.grid_length_m)}",
         "--seed", str(spec.seed), "-o", "grid.net.xml"],
        [sys.executable, str(sumo_home() / "tools" / "randomTrips.py"), "-n", "grid.net.xml", "-b", "0",
         "-e", g(spec.duration_s), "-p", g(spec.trip_period_s), "--seed", str(spec.seed), "-o", "trips.xml"],
        [_binary("sumo"), "-n", "grid.net.xml", "-r", "trips.xml", "--begin", "0", "--end", g(spec.duration_s),
         "--step-length", g(spec.step_s), "--seed", str(spec.seed), "--fcd-output", "fcd.xml", "--no-step-log", "true"],
    ]


def build_sumo_grid(spec: SumoGridSpec | None = None, workdir: str | os.PathLike | None = None,
                    rules: CleaningRules | None = None) -> FcdFile:
    """Run SUMO on a grid scenario and return its FCD output as a mobility source.

    The output is kept in ``workdir`` (default: a folder per spec and SUMO version under the
    system's temporary folder) and reused when present, so calling again is cheap.

    Parameters
    ----------
    spec : SumoGridSpec, optional
        The scenario (default ``SumoGridSpec()``: the case study's 1 km square, 300 s).
    workdir : str or os.PathLike, optional
        Where the network, trips and ``fcd.xml.gz`` go.
    rules : CleaningRules, optional
        Cleaning of the replayed records.

    Returns
    -------
    FcdFile
        Pass it as ``generate_trace(..., mobility=...)`` with a scenario of ``area_m = spec.area_m``
        and ``slot_s = spec.step_s``.

    Raises
    ------
    MobilityError
        SUMO is not installed or one of its commands failed (its last message quoted).
    """
    spec = SumoGridSpec() if spec is None else spec
    cmds = sumo_grid_commands(spec)
    if workdir is None:
        key = hashlib.sha256(json.dumps([asdict(spec), sumo_version()], sort_keys=True).encode()).hexdigest()[:16]
        workdir = Path(tempfile.gettempdir()) / "wdtnopt-sumo" / key
    work = Path(workdir)
    out = work / "fcd.xml.gz"
    if not out.is_file():
        work.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SUMO_HOME": str(sumo_home())}
        # build in a private folder and move the result in atomically: two processes asking for
        # the same spec at once both build, and either result is the same file
        build = Path(tempfile.mkdtemp(prefix="build-", dir=work))
        try:
            for cmd in cmds:
                run = subprocess.run(cmd, cwd=build, env=env, capture_output=True, text=True)
                if run.returncode != 0:
                    last = (run.stderr.strip() or run.stdout.strip() or "no message").splitlines()[-1]
                    raise MobilityError(f"SUMO grid: {Path(cmd[1] if cmd[0] == sys.executable else cmd[0]).name} "
                                        f"failed (exit {run.returncode}): {last}")
            with open(build / "fcd.xml", "rb") as src, gzip.GzipFile(build / "fcd.xml.gz", "wb", mtime=0) as dst:
                shutil.copyfileobj(src, dst)
            for name in ("grid.net.xml", "trips.xml"):
                os.replace(build / name, work / name)
            os.replace(build / "fcd.xml.gz", out)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return FcdFile(str(out), CleaningRules() if rules is None else rules)
