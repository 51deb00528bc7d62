"""Search strategies: a small registry of :class:`Strategy` objects, each an Optuna sampler
plus the hooks a run calls (``prepare`` before ``optimize``, its ``callbacks``, whether
trials are de-duplicated, whether a run covers the space, what ``compare`` runs of it).

``brute_force`` visits every point of the discrete space exactly once, across
resumed runs and parallel workers.  Optuna's ``BruteForceSampler`` cannot: with
parallel workers it stops early unless ``avoid_premature_stop=True``, which then
admits duplicates, and it stops the study as soon as a parameter-less trial (a
skipped duplicate) finishes.  So brute force runs on Optuna's trial queue: the
points are enumerated and enqueued in growing batches (:func:`enqueue_missing`), each with its
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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .records import POINT_ATTR, evaluated, live

if TYPE_CHECKING:
    import optuna

    from .space import SearchSpace

MAX_GRID = 100_000
ENQUEUE_BATCH = 64  # brute force: points enqueued before the first trial
REFERENCE = "brute_force"  # compare's reference: the strategy whose best is the optimum

# Each sampler's keyword arguments (optuna 5) and the type a config value must have:
# "object" ones (callables, operators) cannot come from TOML.  tests/test_search_config.py
# pins this against inspect.signature of the real classes, so config loading needs no Optuna.
SAMPLER_OPTIONS: dict[str, dict[str, str]] = {
    "RandomSampler": {},
    "GridSampler": {},
    "TPESampler": {
        "consider_prior": "bool", "prior_weight": "float", "consider_magic_clip": "bool",
        "consider_endpoints": "bool", "n_startup_trials": "int", "n_ei_candidates": "int",
        "gamma": "object", "weights": "object", "multivariate": "bool", "group": "bool",
        "warn_independent_sampling": "bool", "constant_liar": "bool",
    },
    "NSGAIISampler": {
        "population_size": "int", "mutation": "object", "mutation_prob": "float",
        "crossover": "object", "crossover_prob": "float", "swapping_prob": "float",
        "elite_population_selection_strategy": "object", "child_generation_strategy": "object",
        "after_trial_strategy": "object",
    },
    "QMCSampler": {
        "qmc_type": "str", "scramble": "bool", "independent_sampler": "object",
        "warn_asynchronous_seeding": "bool", "warn_independent_sampling": "bool",
    },
}  # fmt: skip
# arguments the run sets itself; never from [strategy.options]
RESERVED = ("seed", "search_space", "constraints_func")
_TYPES = {"bool": "a boolean", "int": "an integer", "float": "a number", "str": "a string"}


def _has_type(value: Any, kind: str) -> bool:
    if kind == "bool" or isinstance(value, bool):  # a bool is an int to Python, not to us
        return kind == "bool" and isinstance(value, bool)
    return isinstance(value, {"int": int, "float": int | float, "str": str}[kind])


class SharedBudget:
    """An Optuna callback: stop this worker once the study's evaluated and running trials
    reach ``budget`` (workers started at different times then share one budget)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        from optuna.trial import TrialState

        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if evaluated(study) + len(running) >= self.budget:
            study.stop()


def stop_when_queue_empty(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    if waiting(study) == 0:
        study.stop()


@dataclass(frozen=True)
class Strategy:
    """A sampler and how a run drives it (the hooks :func:`search.run.run_study` and
    :func:`search.compare.compare` call instead of asking for a strategy by name)."""

    name: str
    sampler: str  # the optuna.samplers class
    exhaustive: bool  # the budget defaults to the whole space
    constraints: bool  # the sampler uses Trial.set_constraint values
    doc: str
    dedupe: ClassVar[bool] = False  # trials come from the queue only, each point once
    covers: ClassVar[bool] = False  # a run goes on until every point is held by a trial

    def prepare(self, study: optuna.Study, space: SearchSpace, remaining: int | None) -> bool:
        """Before each ``optimize``; ``False``: nothing is left to run."""
        return True

    def callbacks(self, budget: int | None) -> list:
        """Optuna callbacks of one ``optimize`` (workers stop at the study's budget)."""
        return [] if budget is None else [SharedBudget(budget)]

    def compare_runs(self, seeds: int) -> int:
        """How many seeds ``compare`` runs (a deterministic strategy: one)."""
        return 1 if self.covers else seeds

    def compare_trials(self, trials: int) -> int | None:
        """The trial budget of one ``compare`` run (``None``: the whole space)."""
        return None if self.covers else trials

    def sampler_kwargs(self, space: SearchSpace) -> dict[str, Any]:
        """Sampler arguments the space determines (never from ``[strategy.options]``)."""
        return {}


class Grid(Strategy):
    """Optuna's grid over the space's choices."""

    def sampler_kwargs(self, space: SearchSpace) -> dict[str, Any]:
        return {"search_space": {d.name: list(d.choices) for d in space.dims}}


class BruteForce(Strategy):
    """Every point once, across resumed runs and workers, through the trial queue."""

    dedupe = True
    covers = True

    def prepare(self, study: optuna.Study, space: SearchSpace, remaining: int | None) -> bool:
        # In batches that grow with the study, so the first trial starts at once on a big
        # space (enqueueing 65,536 points took minutes) and re-scans stay O(N log N).
        batch = max(ENQUEUE_BATCH, evaluated(study))
        limit = batch if remaining is None else min(remaining, batch)
        return enqueue_missing(study, space, limit=limit) > 0 or waiting(study) > 0

    def callbacks(self, budget: int | None) -> list:
        return [stop_when_queue_empty]


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        # the sampler is never consulted: every trial comes from the queue (see above)
        BruteForce("brute_force", "RandomSampler", True, False, "every point once, in order"),
        Grid("grid", "GridSampler", True, False, "Optuna's grid (random order)"),
        Strategy("random", "RandomSampler", False, False, "uniform random"),
        Strategy("tpe", "TPESampler", False, True, "tree-structured Parzen estimator"),
        Strategy("nsga2", "NSGAIISampler", False, True, "NSGA-II genetic algorithm"),
        Strategy("qmc", "QMCSampler", False, False, "quasi-Monte Carlo (Sobol)"),
    )
}


def check_options(name: str, options: dict[str, Any], path: str = "strategy") -> None:
    """Each option must be a keyword argument of the strategy's sampler, of its type
    (:data:`SAMPLER_OPTIONS`; no Optuna import)."""
    cls = STRATEGIES[name].sampler
    table = SAMPLER_OPTIONS[cls]
    for key, value in options.items():
        if key not in table:
            raise ValueError(
                f"{path}.options.{key} is not an option of {name} ({cls}); "
                f"allowed: {', '.join(table) or 'none'}"
            )
        kind = table[key]
        if kind == "object":
            raise ValueError(f"{path}.options.{key} takes a Python object; not settable here")
        if not _has_type(value, kind):
            raise ValueError(f"{path}.options.{key} must be {_TYPES[kind]}, got {value!r}")


def make_sampler(
    name: str, space: SearchSpace, seed: int, options: dict[str, Any], path: str = "strategy"
) -> optuna.samplers.BaseSampler:
    """The sampler for strategy ``name``; ``options`` are its keyword arguments."""
    import optuna

    check_options(name, options, path)
    cls = getattr(optuna.samplers, STRATEGIES[name].sampler)
    kw: dict[str, Any] = dict(options, seed=seed, **STRATEGIES[name].sampler_kwargs(space))
    try:
        return cls(**kw)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}.options: {str(e).splitlines()[0]}") from None


def point_owners(study: optuna.Study) -> dict[str, int]:
    """Each point key -> the number of the live trial that evaluates it."""
    owners: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get(POINT_ATTR)
        if key is not None and live(t):
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
