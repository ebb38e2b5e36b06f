"""Exceptions of wdtnopt.

Every error a user can cause derives from :class:`WdtnoptError` (a ``ValueError``) and names the
offending field, so the CLI can print one line and exit with code 2.
"""
from __future__ import annotations


class WdtnoptError(ValueError):
    """Base class of the errors caused by user input."""


class ValidationError(WdtnoptError):
    """One or more fields are invalid.

    ``problems`` is a list of ``(field, message)``; ``str(err)`` lists them all, so nothing is lost
    when several fields are wrong at once.
    """

    def __init__(self, what: str, problems: list[tuple[str, str]]):
        self.what = what
        self.problems = list(problems)
        lines = "; ".join(f"{field}: {msg}" for field, msg in self.problems)
        super().__init__(f"invalid {what}: {lines}")

    def __reduce__(self):
        # pickled as its constructor's arguments, so an error raised in a worker process (task
        # pools, Dask) reaches the caller as itself instead of breaking the pool on unpickling
        if type(self) is ValidationError:
            return (ValidationError, (self.what, self.problems))
        return (type(self), (self.problems,))


def key_name(key: object) -> str:
    """A printable name for a user-supplied key: itself if a plain identifier, else its repr."""
    return key if isinstance(key, str) and key.isidentifier() else repr(key)


class ScenarioError(ValidationError):
    """An invalid scenario parameter or scenario file."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("scenario", problems)


class SnapshotError(ValidationError):
    """An invalid snapshot field or snapshot file."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("snapshot", problems)


class DecisionError(ValidationError):
    """A decision whose arrays do not fit the snapshot."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("decision", problems)


class PolicyError(WdtnoptError):
    """A policy returned a decision the simulator cannot apply."""


class UnknownAgentError(WdtnoptError, KeyError):
    """An agent name the environment does not have (a ``KeyError`` too, as a missing key of
    PettingZoo's default ``observation_spaces[agent]`` lookup is, so ``except KeyError`` still holds)."""

    def __str__(self) -> str:
        return ValueError.__str__(self)   # the message itself, not KeyError's quoted repr of it


class MobilityError(WdtnoptError):
    """A mobility file that cannot be read (naming its line or row), or too little usable data in it."""
