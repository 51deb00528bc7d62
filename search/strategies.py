"""Search strategies: a small registry, each a thin wrapper over an Optuna sampler.

``brute_force`` visits every point of the discrete space exactly once, across
resumed runs and parallel workers.  Optuna's ``BruteForceSampler`` cannot: with
parallel workers it stops early unless ``avoid_premature_stop=True``, which then
admits duplicates, and it stops the study as soon as a parameter-less trial (a
skipped duplicate) finishes.  So brute force runs on Optuna's trial queue: the
points are enumerated and enqueued (:func:`enqueue_missing`), each with its
deterministic key as the ``point`` user attribute, set when the trial is created.
Taking a WAITING trial is atomic in every Optuna storage, so a point runs twice
only if it was enqueued twice (two processes starting at once); :func:`duplicate_of`
resolves that the same way in every process: of the live trials carrying a key,
the lowest-numbered one is the point's trial and the others are skipped (PRUNED,
``duplicate_of`` attr).
A trial that died without a recorded error (a killed worker) is not live, so
its point is enqueued again on the next start.

Constraints (``[metrics.NAME]`` bounds) are set with ``Trial.set_constraint``
(Optuna 5 deprecates the samplers' ``constraints_func`` in its favour):
``tpe`` and ``nsga2`` steer away from infeasible points; ``random``, ``grid``,
``brute_force`` and ``qmc`` sample as if unconstrained.  In every case the best
trial and the Pareto front are chosen from feasible trials only.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from .space import SearchSpace

POINT_ATTR = "point"  # the point's key (brute force), set at enqueue time
ERROR_ATTR = "error"  # why a trial failed (a recorded failure, not a dead worker)
DUPLICATE_ATTR = "duplicate_of"
SKIPPED_ATTR = "skipped"  # a trial that evaluated nothing (duplicate, or no point left)
MAX_GRID = 100_000


@dataclass(frozen=True)
class Strategy:
    name: str
    sampler: str  # the optuna.samplers class
    exhaustive: bool  # the budget defaults to the whole space
    constraints: bool  # the sampler uses Trial.set_constraint values
    doc: str


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        # the sampler is never consulted: every trial comes from the queue (see above)
        Strategy("brute_force", "RandomSampler", True, False, "every point once, in order"),
        Strategy("grid", "GridSampler", True, False, "Optuna's grid (random order)"),
        Strategy("random", "RandomSampler", False, False, "uniform random"),
        Strategy("tpe", "TPESampler", False, True, "tree-structured Parzen estimator"),
        Strategy("nsga2", "NSGAIISampler", False, True, "NSGA-II genetic algorithm"),
        Strategy("qmc", "QMCSampler", False, False, "quasi-Monte Carlo (Sobol)"),
    )
}
# arguments the run sets itself; never from [strategy.options]
RESERVED = ("seed", "search_space", "constraints_func")


def check_options(name: str, options: dict[str, Any], path: str = "strategy") -> None:
    """Each option must be a scalar keyword argument of the strategy's sampler."""
    import optuna

    cls = getattr(optuna.samplers, STRATEGIES[name].sampler)
    allowed = [k for k in inspect.signature(cls).parameters if k not in RESERVED]
    for key, value in options.items():
        if key not in allowed:
            raise ValueError(
                f"{path}.options.{key} is not an option of {name} ({cls.__name__}); "
                f"allowed: {', '.join(allowed) or 'none'}"
            )
        if not isinstance(value, bool | int | float | str):
            raise ValueError(f"{path}.options.{key} must be a number, string or boolean")


def make_sampler(
    name: str, space: SearchSpace, seed: int, options: dict[str, Any], path: str = "strategy"
) -> optuna.samplers.BaseSampler:
    """The sampler for strategy ``name``; ``options`` are its keyword arguments."""
    import optuna

    check_options(name, options, path)
    cls = getattr(optuna.samplers, STRATEGIES[name].sampler)
    kw: dict[str, Any] = dict(options, seed=seed)
    if name == "grid":
        kw["search_space"] = {d.name: list(d.choices) for d in space.dims}
    try:
        return cls(**kw)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}.options: {str(e).splitlines()[0]}") from None


def _live(t: optuna.trial.FrozenTrial) -> bool:
    """Holds or will hold its point's result (a dead worker's trial does not)."""
    from optuna.trial import TrialState

    if t.state == TrialState.FAIL:
        return ERROR_ATTR in t.user_attrs
    return t.state != TrialState.PRUNED or SKIPPED_ATTR not in t.user_attrs


def point_owners(study: optuna.Study) -> dict[str, int]:
    """Each point key -> the number of the live trial that evaluates it."""
    owners: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get(POINT_ATTR)
        if key is not None and _live(t):
            owners[key] = min(owners.get(key, t.number), t.number)
    return owners


def enqueue_missing(study: optuna.Study, space: SearchSpace, limit: int | None = None) -> int:
    """Enqueue the points no live trial holds (at most ``limit``); return how many."""
    owners = point_owners(study)
    n = 0
    for point in space.grid():
        if limit is not None and n >= limit:
            break
        key = space.key(point)
        if key not in owners:
            study.enqueue_trial(point, user_attrs={POINT_ATTR: key})
            n += 1
    return n


def waiting(study: optuna.Study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def duplicate_of(study: optuna.Study, number: int, key: str) -> int | None:
    """The trial that owns point ``key`` if it is not trial ``number``, else ``None``."""
    owner = point_owners(study).get(key, number)
    return None if owner == number else owner
