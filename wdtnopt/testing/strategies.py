"""Hypothesis strategies of malformed inputs (shared by tests/test_fuzz.py and benchmarks/fuzz_inputs.py).

Each strategy draws a valid input and then maybe breaks it in one of many ways: wrong shapes,
NaN/inf, negative capacities, out-of-range indices, wrong types, missing and unknown keys, huge
values, empty or truncated files. The property everywhere: the input is either accepted, or
rejected with the library's own error naming a field; never another exception, never a hang.
"""
from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import strategies as st

from wdtnopt import Scenario
from wdtnopt.snapshot import FIELDS, _SPEC

BAD_SCALARS = [float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e308, -1e308, 2**63, "x", None, True, [], {}]


def valid_snapshot_dict(draw, n: int, m: int) -> dict:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d = {
        "gain": (10 ** rng.uniform(-14, -9, (n, m))).tolist(),
        "assoc": rng.integers(0, m, n).tolist(),
        "bandwidth": rng.uniform(1e6, 2e7, n).tolist(),
        "noise_psd": rng.uniform(1e-20, 5e-20, n).tolist(),
        "p_max": [0.2] * n,
        "data_bits": rng.uniform(3e5, 9e5, n).tolist(),
        "cycles_per_bit": rng.uniform(100, 300, n).tolist(),
        "deadline": rng.uniform(0.05, 0.3, n).tolist(),
        "request": (rng.random(n) < 0.6).tolist(),
        "dt_size_bits": rng.uniform(1e8, 3e8, n).tolist(),
        "cpu_hz": [1e10] * m,
        "storage_bits": [3e8 * math.ceil(1.5 * n / m)] * m,
        "backhaul_latency_s": (0.01 * (1 - np.eye(m))).tolist(),
        "backhaul_s_per_bit": (2e-9 * (1 - np.eye(m))).tolist(),
        "placement_prev": rng.integers(0, m, n).tolist(),
        "migrating": (rng.random(n) < 0.1).tolist(),
        "failure_penalty": [0.01] * n,
        "migration_penalty": [0.005] * n,
        "allow_migration": bool(rng.random() < 0.8),
    }
    return d


def _mutate_field(draw, value):
    kind = draw(st.sampled_from(["scalar", "entry", "shape", "empty", "nest", "type"]))
    if kind == "scalar":
        return draw(st.sampled_from(BAD_SCALARS))
    if kind == "entry" and isinstance(value, list) and value:
        out = json.loads(json.dumps(value))
        i = draw(st.integers(0, len(out) - 1))
        bad = draw(st.sampled_from(BAD_SCALARS + [-5, 10**6, 1.5]))
        if isinstance(out[i], list) and out[i]:
            out[i][draw(st.integers(0, len(out[i]) - 1))] = bad
        else:
            out[i] = bad
        return out
    if kind == "shape" and isinstance(value, list):
        if value and draw(st.booleans()):
            return value[:-1]
        return value + value[:1]
    if kind == "empty":
        return []
    if kind == "nest":
        return [value]
    return draw(st.sampled_from(["abc", {"a": 1}, 3, None, [[1, 2], [3]]]))


@st.composite
def snapshot_dicts(draw, max_n: int = 5, max_m: int = 3, mutate: bool = True):
    """A snapshot dict, valid or broken in 1-3 places."""
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, max_m))
    d = valid_snapshot_dict(draw, n, m)
    if not mutate:
        return d
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["field", "field", "field", "missing", "unknown"]))
        key = draw(st.sampled_from(FIELDS))
        if action == "missing":
            d.pop(key, None)
        elif action == "unknown":
            d[draw(st.sampled_from(["gains", "N", "", "placement"]))] = 1
        elif key in d:
            d[key] = _mutate_field(draw, d[key])
    return d


@st.composite
def scenario_dicts(draw):
    """A scenario table, valid or broken: unknown keys, wrong types, out-of-range values."""
    names = [name for name, _, _ in Scenario.describe()]
    d: dict = {}
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(names + ["n_users", "speed"]))
        d[key] = draw(st.one_of(st.sampled_from(BAD_SCALARS), st.integers(-5, 100), st.floats(allow_nan=True),
                                st.text(max_size=3)))
    return d


@st.composite
def file_texts(draw):
    """Text for a JSON file: valid snapshot JSON, or broken (truncated, empty, wrong root, garbage)."""
    d = draw(snapshot_dicts(max_n=4, max_m=2))
    text = json.dumps(d, allow_nan=True)
    how = draw(st.sampled_from(["as-is", "truncate", "empty", "root-list", "garbage", "nan-literal"]))
    if how == "truncate":
        return text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    if how == "empty":
        return draw(st.sampled_from(["", "   ", "\n"]))
    if how == "root-list":
        return "[" + text + "]"
    if how == "garbage":
        return draw(st.text(max_size=40))
    if how == "nan-literal":
        return text.replace("0.2", "NaN", 1)
    return text


def names_fields(err) -> bool:
    """Does a ValidationError name, for each problem, the field (or file) it is about?"""
    text = str(err)
    return bool(err.problems) and all(isinstance(f, str) and f and f"{f}: " in text for f, _ in err.problems)
