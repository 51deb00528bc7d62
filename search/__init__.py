"""Hardware-aware quantisation search on Optuna (``python -m search run CONFIG``).

Config (:mod:`.config`) -> space (:mod:`.space`) -> strategy (:mod:`.strategies`)
-> trial (:mod:`.trial`: quantise, software metrics, :mod:`.hardware`) -> score
(:mod:`.scoring`) -> study (:mod:`.run`) -> reports (:mod:`.report`); what a trial
records: :mod:`.records`.  ``python -m search study`` forwards to :mod:`studies.leaky`.
Imports ``models`` and ``hdl``; nothing imports ``search``.
"""
