"""Counted nouns in messages: ``1 vehicle``, ``2 vehicles`` (never ``1 vehicles``)."""
from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None, *, thousands: bool = False) -> str:
    """``"<n> <noun>"`` with the noun in the singular for exactly one, else the plural.

    Parameters
    ----------
    n : int
        The count (a Python or numpy integer).
    noun : str
        The singular (``"vehicle"``).
    plural : str, optional
        The plural where it is not ``noun + "s"`` (``"MUs"`` for ``"MU"`` is the default form).
    thousands : bool, optional
        Write ``n`` with a thousands separator (``"1,024 slots"``), as the messages about the sizes
        of traces, runs and bounds do; default False (``"1024 records"``).

    Returns
    -------
    str
        For example ``counted(1, "vehicle") == "1 vehicle"``, ``counted(3, "vehicle") == "3 vehicles"``,
        ``counted(1024, "slot", thousands=True) == "1,024 slots"``.
    """
    number = f"{n:,}" if thousands else f"{n}"
    return f"{number} {noun if n == 1 else (plural or noun + 's')}"


def sizes(slots: int, n_mus: int, n_bss: int | None = None) -> str:
    """The size of a trace or run for a message: ``"1,024 slots x 1 MU x 5 BSs"`` (without ``n_bss``:
    ``"1,024 slots x 1 MU"``), each count with a thousands separator and its noun agreeing."""
    words = [counted(int(slots), "slot", thousands=True), counted(int(n_mus), "MU", thousands=True)]
    if n_bss is not None:
        words.append(counted(int(n_bss), "BS", thousands=True))
    return " x ".join(words)


def verb(n: int, singular: str, plural: str) -> str:
    """The verb agreeing with a count: ``verb(1, "has", "have") == "has"``."""
    return singular if n == 1 else plural
