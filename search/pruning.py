"""``[strategy] pruner``: stop a trial's fine-tuning early on its per-epoch val accuracy.

A trial with ``[training]`` reports each epoch's validation accuracy (``trial.report``,
step = epochs trained); the pruner compares it with the other trials' at the same step
and a pruned trial ends ``PRUNED`` (``pruned_epoch`` records where).  Options:
``pruner_warmup`` (median: epochs before pruning may start; successive halving and
hyperband: the minimum resource, in epochs), ``pruner_startup`` (median: trials that
finish before any is pruned) and ``pruner_reduction`` (successive halving, hyperband: the
reduction factor).  Optuna prunes single-objective studies only.  Importing this module
does not import Optuna (the config validates with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

PRUNERS = ("none", "median", "successive_halving", "hyperband")
# option -> the pruners it applies to
PRUNER_OPTIONS = {
    "pruner_warmup": ("median", "successive_halving", "hyperband"),
    "pruner_startup": ("median",),
    "pruner_reduction": ("successive_halving", "hyperband"),
}


@dataclass(frozen=True)
class PrunerConfig:
    name: str = "none"
    warmup: int = 1  # median: n_warmup_steps; SHA/hyperband: min_resource
    startup: int = 5  # median: n_startup_trials
    reduction: int = 3  # SHA/hyperband: reduction_factor

    @property
    def enabled(self) -> bool:
        return self.name != "none"


def make_pruner(p: PrunerConfig, epochs: int) -> optuna.pruners.BasePruner:
    """The Optuna pruner of ``p`` for trials of at most ``epochs`` epochs."""
    import optuna

    if p.name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.startup, n_warmup_steps=p.warmup)
    if p.name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(p.warmup, 1), reduction_factor=p.reduction
        )
    if p.name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=max(p.warmup, 1),
            max_resource=max(epochs, max(p.warmup, 1)),
            reduction_factor=p.reduction,
        )
    return optuna.pruners.NopPruner()
