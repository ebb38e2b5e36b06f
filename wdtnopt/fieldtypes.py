"""A value against the type hint of an options/config dataclass field (bool, int, float, str, or one
of them or None), for the solver options and the agents' configs: one rule for both; and
:func:`is_finite_number`, the one rule for a finite non-negative number (the Lyapunov scheduler's
``V`` and ``theta``, the benchmark suites' numeric settings)."""
from __future__ import annotations

import numbers
import types
from typing import Any, Union, get_args, get_origin

import numpy as np

WANT = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
"""How an error names each kind."""


def as_field_type(value: Any, hint: Any) -> tuple[Any, str | None]:
    """``(value as the field's type, None)``, or ``(value, "expected form")`` when it is not of it.

    An int is a float; a bool (Python's or numpy's) is no number; numpy numbers become Python's.
    Hints of other types (``tuple[float, ...]``, ``list[str]``, ...) accept anything (returned
    unchanged: their fields check their own form).
    """
    kinds = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    optional = type(None) in kinds
    if value is None and optional:
        return None, None
    kind = next((k for k in kinds if k is not type(None)), None)
    if kind not in WANT:
        return value, None
    is_bool = isinstance(value, (bool, np.bool_))   # numpy 2 names its bool type "bool", numpy 1 "bool_"
    ok = {bool: is_bool, str: isinstance(value, str),
          int: isinstance(value, numbers.Integral) and not is_bool,
          float: isinstance(value, numbers.Real) and not is_bool}[kind]
    if not ok:
        return value, WANT[kind] + (" or None" if optional else "")
    return (value if kind is str else kind(value)), None


def is_bool(value: Any) -> bool:
    """Whether ``value`` is a bool, Python's or numpy's (numpy 2 names its type "bool", numpy 1 "bool_")."""
    return isinstance(value, (bool, np.bool_))


def holds_bool(value: Any) -> bool:
    """Whether ``value`` is, or holds anywhere (nested lists and tuples, a bool or object array), a bool:
    numpy reads ``[true, 2.0]`` as ``[1.0, 2.0]`` and ``True`` as 1, so a number field checks this first."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, np.ndarray):
            if v.dtype == bool:
                return True
            if v.dtype == object:
                stack.extend(v.flat)
            continue
        if not isinstance(v, (list, tuple)):
            if is_bool(v):
                return True
            continue
        types_in = set(map(type, v))   # one pass in C over a long flat list of numbers
        if bool in types_in or np.bool_ in types_in:
            return True
        if list in types_in or tuple in types_in or np.ndarray in types_in:
            stack.extend(x for x in v if isinstance(x, (list, tuple, np.ndarray)))
    return False


def is_finite_number(value: Any, *, positive: bool = False) -> bool:
    """Whether ``value`` is a finite real number ``>= 0`` (``> 0`` with ``positive``).

    A bool is no number (``True`` is not 1 here), nor is a string or an array; Python's and numpy's
    ints and floats are numbers. Callers raise their own error naming the field.
    """
    if is_bool(value) or not isinstance(value, numbers.Real):
        return False
    try:
        v = float(value)
    except OverflowError:      # an int past the float range (10**400) is no number a float holds
        return False
    return bool(np.isfinite(v) and v >= 0 and not (positive and v == 0))
