"""Atomic file writes: a reader never sees a half-written result, a killed run leaves no torn file."""
from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: str | os.PathLike[str], write: Callable[[Any], None], *, binary: bool = False) -> None:
    """Write through ``write(fileobj)`` into a temporary file beside ``path``, fsync, then rename.

    An empty name or a folder is an ``IsADirectoryError`` naming it, before anything is written (the
    rename failed with the temporary file's name, "Device or resource busy" for ``''``)."""
    raw = os.fspath(path)
    path = Path(path)
    if not str(raw).strip() or path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "expected a file name, got a folder" if str(raw).strip()
                                else "expected a file name, got an empty one", str(raw))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:   # name the file asked for, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())   # as open() would: mkstemp's 0600 made every result owner-only
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    """The process's file-mode creation mask (read without changing it where Linux shows it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_text(path: str | os.PathLike[str], error: Callable[[list[tuple[str, str]]], Exception]) -> str:
    """A UTF-8 text file's contents; a missing, unreadable or binary file raises ``error`` naming it.
    A leading byte-order mark (what Windows editors and spreadsheets write as "UTF-8") is dropped, as
    the CSV reader drops it, so JSON and TOML files saved that way read as without it."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise error([(str(path), f"cannot read file: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError:
        raise error([(str(path), "not a UTF-8 text file")]) from None


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text))


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
