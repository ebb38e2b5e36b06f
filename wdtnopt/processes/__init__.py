"""Exogenous processes of a trace, one module each behind a small interface (docs/model.md, section 2).

:mod:`wdtnopt.trace` composes them; every process draws from its own random stream of the trace's
seed, so adding a process never shifts another. ``mobility``: where MU positions come from (the
built-in Gauss-Markov model, SUMO FCD files, recorded position tables; docs/mobility.md).
``availability``: edge-server failures and repairs and background CPU load (docs/model.md, section 12).
``channels``: the macro, THz and RIS laws; ``semantic``: the compression menu of a scenario
(docs/model.md, section 13).
"""
