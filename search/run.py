"""Run a study: ``run_study(config, ...)`` (also callable from a worker process).

Storage URLs are resolved in one place (:func:`storage_url`, :func:`open_storage`);
the default is ``sqlite:///<out>/<study>/study.db``.  Running again on the same
storage and study resumes it: the budget (``n_trials``) counts every trial the
study already evaluated, brute force enqueues only the points not yet held.  A
study remembers the config that created it (``config_source``, ``fingerprint``
study attributes); resuming it with a different model, space, metrics, score or
hardware is an error.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from qspec.names import NAME, check_name

from .config import SearchConfig, loads_config
from .hardware import HardwareEvaluator, hardware_metrics
from .pruning import make_pruner
from .records import (
    FINGERPRINT_ATTR,
    REFERENCE_ATTR,
    SKIPPED_ATTR,
    SOURCE_ATTR,
    evaluated,
    metric_attrs,
)
from .scoring import Objective, needs_reference, reference_values
from .space import SearchSpace
from .storage import DEFAULT_OUT, join, local_file, open_storage, redact, storage_url
from .strategies import MAX_GRID, STRATEGIES, make_sampler
from .trial import Evaluator, TrialFailed, TrialObjective, context_of

if TYPE_CHECKING:
    import optuna

    from .report import Reports


def existing_study_attrs(storage: optuna.storages.BaseStorage, name: str) -> dict | None:
    try:
        sid = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(sid)


def config_of_study(study: optuna.Study) -> SearchConfig:
    """The config a study was created from (stored with it)."""
    source = study.user_attrs.get(SOURCE_ATTR)
    if source is None:
        raise ValueError(f"study {study.study_name} was not created by python -m search")
    return loads_config(source, name=study.study_name, where=f"study {study.study_name}")


@contextlib.contextmanager
def _shared_cache(url: str):
    """The synthesis cache :func:`join` sets for the trials (PostgreSQL: the storage's
    database), for the reference design measured before the study exists."""
    import os

    from hdl.synth.cache import CACHE_URL_ENV

    from .storage import synth_cache_url

    cache = synth_cache_url(url)
    if cache is None or CACHE_URL_ENV in os.environ:
        yield
        return
    os.environ[CACHE_URL_ENV] = cache
    try:
        yield
    finally:
        os.environ.pop(CACHE_URL_ENV, None)


@dataclass(frozen=True)
class RunResult:
    study: str
    storage: str
    strategy: str
    out_dir: Path
    ran: int  # trials this call evaluated
    total: int  # trials the study has evaluated
    space_size: int
    reports: Reports | None


class _Progress:
    """A tqdm bar with the best value so far, and the running trial's fine-tuning epoch
    (an Optuna callback; :meth:`epoch` is the trial's per-epoch hook)."""

    def __init__(self, total: int | None, objective: Objective, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.objective = objective
        self.ran = 0
        self.failed = 0
        self.pruned = 0
        self.post: dict[str, object] = {"failed": 0}
        self.bar = tqdm(total=total, desc="trials", unit="trial", disable=not enabled)

    def epoch(self, epoch: int, epochs: int, acc: float) -> None:
        """``epoch 3/10 val 0.84`` after the finished trials' figures."""
        done = ", ".join(f"{k}={v}" for k, v in self.post.items())
        self.bar.set_postfix_str(f"{done}, epoch {epoch}/{epochs} val {acc:.3g}")

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        from optuna.trial import TrialState

        if SKIPPED_ATTR in trial.user_attrs:
            return
        self.ran += 1
        self.failed += trial.state == TrialState.FAIL
        self.pruned += trial.state == TrialState.PRUNED
        post: dict[str, object] = {"failed": self.failed}
        if self.pruned:
            post["pruned"] = self.pruned
        if len(self.objective.names) == 1:
            with contextlib.suppress(ValueError):  # nothing complete and feasible yet
                post["best"] = f"{study.best_value:.4g}"
        else:
            post["front"] = len(study.best_trials)
        self.post = post
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def set_metric_names(study: optuna.Study, objective: Objective) -> None:
    """Name the objective values (optuna-dashboard shows ``score`` or the Pareto metrics,
    not "Objective 0"); a study system attribute, so every storage keeps it."""
    import optuna

    names = list(objective.names)
    if study.metric_names != names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)


def run_study(
    cfg: SearchConfig,
    *,
    strategy: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    out_dir: str | Path = DEFAULT_OUT,
    hardware: HardwareEvaluator | None = None,
    progress: bool = True,
    reports: bool = True,
) -> RunResult:
    """Create or resume the study and run trials until the budget or timeout is spent.

    Arguments override the config (``--strategy`` etc.); ``hardware`` replaces the
    synthesis step (tests); ``reports`` writes ``<out_dir>/<study>/`` at the end.
    """
    import optuna

    st = cfg.strategy
    if strategy is not None and strategy != st.name:
        if strategy not in STRATEGIES:
            raise ValueError(f"--strategy must be one of {'|'.join(STRATEGIES)}, got {strategy!r}")
        st = replace(st, name=strategy, options={})  # the options belong to the other sampler
    st = replace(st, n_trials=n_trials or st.n_trials, timeout=timeout or st.timeout)
    info = STRATEGIES[st.name]
    name = check_name("study", study_name or cfg.storage.study, NAME)
    url = storage_url(storage or cfg.storage.url, name, out_dir)
    space = SearchSpace.from_config(cfg)
    if info.exhaustive and space.size > MAX_GRID:
        raise ValueError(
            f"strategy {st.name} would visit {space.size} points (max {MAX_GRID}); "
            f"narrow the space or use tpe|random|nsga2|qmc"
        )
    budget = st.n_trials if st.n_trials is not None else (space.size if info.exhaustive else None)
    if budget is None and st.timeout is None:
        raise ValueError(f"strategy.n_trials (or --trials, or a timeout) is needed for {st.name}")
    level = optuna.logging.get_verbosity()  # restored at the end: callers keep their logging
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = make_sampler(st.name, space, st.seed, st.options)
    if cfg.hardware.enabled and hardware is None:
        from hdl.synth.yosys import resolve_backend

        resolve_backend()  # a bad $HWFIRST_YOSYS_BACKEND is an input error, before any work
        hardware = hardware_metrics
    out = Path(out_dir) / name
    if reports:
        from .report import check_report_paths

        check_report_paths(out)

    # Everything that can refuse the config runs before the study exists: a refused run
    # leaves no study (which would then refuse the corrected config as a different one).
    local = local_file(url)
    fresh = local is not None and not local.exists()
    store = None if fresh else open_storage(url)
    attrs = None if store is None else existing_study_attrs(store, name)
    # no fingerprint yet: another worker created the study a moment ago and is setting it
    if attrs is not None and attrs.get(FINGERPRINT_ATTR, cfg.fingerprint) != cfg.fingerprint:
        raise ValueError(
            f"study {name!r} in {url} was created from a different config (model, space, "
            f"metrics, score, hardware or training); pass another --study or --storage"
        )
    objective = Objective.of(cfg)
    context = context_of(cfg)
    evaluator = Evaluator(cfg, context, hardware)
    reference: dict[str, float] = {}
    measured = None
    if needs_reference(cfg):  # the reference design is measured like a trial's design
        measured = (attrs or {}).get(REFERENCE_ATTR)
        if measured is not None:
            measured = metric_attrs(measured)  # a study of an earlier version
        else:
            with _shared_cache(url):  # ReferenceFailed: a tool failure, and no study
                measured = evaluator.reference()
        reference = reference_values(cfg, measured)  # ValueError: e.g. a zero reference
    study = optuna.create_study(
        storage=store if store is not None else open_storage(url),
        study_name=name,
        sampler=sampler,
        directions=list(objective.directions),
        load_if_exists=True,
        pruner=make_pruner(cfg.strategy.pruner, cfg.training.epochs),
    )
    set_metric_names(study, objective)  # also on a study made before names were set
    if attrs is None:
        study.set_user_attr(FINGERPRINT_ATTR, cfg.fingerprint)
        study.set_user_attr(SOURCE_ATTR, redact(cfg.source))  # the dashboard shows it
    if measured is not None and REFERENCE_ATTR not in study.user_attrs:
        study.set_user_attr(REFERENCE_ATTR, measured)
    lease = join(url, study)  # fail dead workers' RUNNING trials; PostgreSQL: shared cache
    trial_objective = TrialObjective(cfg, space, evaluator, reference, dedupe=info.dedupe)

    before = evaluated(study)
    remaining = None if budget is None else max(budget - before, 0)
    bar = _Progress(remaining, objective, progress)
    trial_objective.progress = bar.epoch if progress else None
    deadline = None if st.timeout is None else time.monotonic() + st.timeout
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the bar reports; failures are recorded
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            while remaining is None or remaining > 0:
                if not info.prepare(study, space, remaining):
                    break  # e.g. brute force: every point is held by a trial
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                study.optimize(
                    trial_objective,
                    n_trials=remaining,
                    timeout=left,
                    catch=(TrialFailed,),
                    callbacks=[bar, *info.callbacks(budget)],
                )
                if not info.covers:  # brute force: the next batch of its queue
                    break
                remaining = None if budget is None else max(budget - evaluated(study), 0)
    finally:
        bar.close()
        lease.release()
        optuna.logging.set_verbosity(level)
    if cfg.hardware.confirm and cfg.hardware.enabled:
        from .confirm import confirm_study

        with _shared_cache(url):
            confirm_study(study, cfg, evaluator, progress=progress)
    total = evaluated(study)
    rep = None
    if reports:
        from .report import write_reports

        rep = write_reports(study, cfg, out, context=context, storage=url)
    return RunResult(name, url, st.name, out, total - before, total, space.size, rep)
