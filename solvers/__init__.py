"""Algorithms for the snapshot problem (installed as ``wdtnopt.solvers``)."""
