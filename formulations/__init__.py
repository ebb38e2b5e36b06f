"""Explicit statements of the snapshot problem (installed as ``wdtnopt.formulations``)."""
