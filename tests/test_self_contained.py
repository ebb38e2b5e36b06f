"""A clean clone explains itself: nothing in the package, its docs, README, benchmarks or tests names
a path outside the repository or a number of an issue tracker the reader does not have; code cites
docs/model.md by section, and those sections exist."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = ("wdtnopt", "formulations", "solvers", "benchmarks", "docs", "tests")
FILES = ("README.md", "BENCHMARKS.md", "setup.cfg", "pyproject.toml", "Makefile")
SKIP_DIRS = {"__pycache__", "data", ".hypothesis"}
OUTSIDE = [
    (re.compile(r"\.\./shared|\bshared/reference"), "a path beside the repository"),
    (re.compile(r"\b(MODEL|ARCHITECTURE|STYLE)\.md\b"), "a document outside the repository (cite docs/model.md, section N)"),
    (re.compile(r"/wor[k]/"), "an absolute path of the project machine"),
    (re.compile(r"\b[Ii]ssues? #?\d"), "an issue number (cite docs/..., not the tracker)"),
]


def _texts():
    paths = [ROOT / f for f in FILES if (ROOT / f).is_file()]
    for tree in TREES:
        for p in (ROOT / tree).rglob("*"):
            if p.is_file() and p.suffix in (".py", ".md", ".cfg", ".toml", ".txt") and not SKIP_DIRS & set(p.relative_to(ROOT).parts):
                paths.append(p)
    return paths


def test_no_reference_outside_the_repository():
    found = []
    for p in _texts():
        for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            for pattern, what in OUTSIDE:
                if pattern.search(line):
                    found.append(f"{p.relative_to(ROOT)}:{i}: {what}: {line.strip()[:100]}")
    assert not found, "\n".join(found)


def test_cited_model_sections_exist():
    sections = set(re.findall(r"^## (\d+)\. ", (ROOT / "docs" / "model.md").read_text(), flags=re.M))
    cited = set()
    for p in _texts():
        for m in re.finditer(r"docs/model\.md, sections? ([\d ,\-and]+)", p.read_text(errors="replace")):
            cited |= set(re.findall(r"\d+", m.group(1)))
    assert cited, "code cites docs/model.md by section"
    assert cited <= sections, f"cited sections missing from docs/model.md: {sorted(cited - sections)}"
