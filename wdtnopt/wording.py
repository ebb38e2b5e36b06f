"""Counted nouns in messages: ``1 vehicle``, ``2 vehicles`` (never ``1 vehicles``)."""
from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``"<n> <noun>"`` with the noun in the singular for exactly one, else the plural.

    Parameters
    ----------
    n : int
        The count.
    noun : str
        The singular (``"vehicle"``).
    plural : str, optional
        The plural where it is not ``noun + "s"`` (``"MUs"`` for ``"MU"`` is the default form).

    Returns
    -------
    str
        For example ``counted(1, "vehicle") == "1 vehicle"``, ``counted(3, "vehicle") == "3 vehicles"``.
    """
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def verb(n: int, singular: str, plural: str) -> str:
    """The verb agreeing with a count: ``verb(1, "has", "have") == "has"``."""
    return singular if n == 1 else plural
