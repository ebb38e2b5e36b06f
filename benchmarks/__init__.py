"""Benchmarks of wdtnopt (installed as ``wdtnopt.benchmarks``).

``benchmarks/suites/`` holds the suites that ``wdtnopt bench`` runs (``paper``, ``solvers``,
``scaling``), ``benchmarks/configs/`` their presets (TOML, shipped as package data); the
``bench_*.py`` scripts beside them are the measurement scripts. docs/benchmarks.md
describes the suites.
"""
