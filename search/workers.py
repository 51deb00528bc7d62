"""``python -m search run CONFIG --workers N``: N processes on one study, one trial budget.

Each worker is a ``spawn``-ed process calling :func:`search.run.run_study` on the same
storage (see :mod:`search.storage`: a journal file on one machine, PostgreSQL across
machines; the default SQLite file is one process, so ``--workers N`` defaults to
``<out>/<study>/study.journal``).  Worker ``i`` seeds its sampler with ``seed + i`` so
random/TPE workers do not propose the same sequence.  The budget is the study's: every
worker stops once the study's evaluated plus running trials reach it
(:class:`search.strategies.SharedBudget`); brute force shares its points through the
exactly-once queue of :mod:`search.strategies`.  On another machine, run the same command
with the same ``--storage postgresql://...``: it joins the study.

A worker that dies (SIGKILL, OOM) loses nothing completed; its RUNNING trial is failed
and its point enqueued again by the next process to join the study (here, the launcher
once the other workers have finished), so a rerun of the command completes it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qspec.limits import max_workers

from .hardware import one_line
from .records import evaluated
from .run import RunResult, run_study
from .storage import DEFAULT_OUT, default_path, join, kind, open_storage, storage_url
from .trial import ReferenceFailed

REFERENCE_FAILED = "reference failed: "  # marks a worker's ReferenceFailed on the queue

if TYPE_CHECKING:
    from .config import SearchConfig
    from .hardware import HardwareEvaluator


@dataclass(frozen=True)
class WorkersResult:
    run: RunResult  # ``ran``: trials all workers evaluated
    workers: int
    died: int  # workers that ended without a result (killed)
    recovered: int  # their RUNNING trials the launcher failed and enqueued again


def _worker(index: int, cfg: SearchConfig, kwargs: dict[str, Any], queue) -> None:
    """One worker process: run the study, report ``(index, ran, error)``."""
    from qspec.cli import terminated_as_interrupt

    try:
        with terminated_as_interrupt():  # SIGTERM: kill the tool child, remove its work dir
            res = run_study(cfg, progress=False, reports=False, **kwargs)
        queue.put((index, res.ran, None))
    except KeyboardInterrupt:  # stopped by the launcher (or Ctrl-C): it reports that
        return
    except Exception as e:  # reported by the launcher as one line
        if isinstance(e, ReferenceFailed):  # a tool failure: the launcher exits 1, not 2
            queue.put((index, 0, f"{REFERENCE_FAILED}{e}"))
        else:
            queue.put((index, 0, one_line(e) if not isinstance(e, ValueError) else str(e)))


def _evaluated(url: str, name: str) -> int:
    import optuna

    try:
        return evaluated(optuna.load_study(study_name=name, storage=open_storage(url)))
    except KeyError:  # not created yet
        return 0


def resolve_url(
    storage: str | None, cfg: SearchConfig, name: str, out_dir: str | Path, workers: int
) -> str:
    """The storage of a ``--workers`` run (one-line errors for SQLite with workers > 1)."""
    url = storage_url(storage or cfg.storage.url, name, out_dir, workers=workers)
    if workers > 1 and kind(url) == "sqlite":
        raise ValueError(
            f"--workers {workers} needs --storage journal:///FILE or postgresql://...; "
            f"SQLite is for one process, got {url}"
        )
    db = default_path(name, out_dir)
    if workers > 1 and storage is None and cfg.storage.url is None and db.exists():
        raise ValueError(
            f"--workers {workers}: study {name!r} already lives in {db} (SQLite, one process); "
            f"resume it without --workers or pass --storage"
        )
    return url


def run_workers(
    cfg: SearchConfig,
    workers: int,
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
    poll: float = 1.0,
) -> WorkersResult:
    """Run ``workers`` processes on the study (``hardware`` must be picklable), then write
    the reports once.  Raises ``ValueError`` with the first worker's error."""
    import optuna
    from tqdm.auto import tqdm

    from .space import SearchSpace

    if not 1 <= workers <= max_workers():
        raise ValueError(f"--workers must be an integer in [1, {max_workers()}], got {workers}")
    name = study_name or cfg.storage.study
    url = resolve_url(storage, cfg, name, out_dir, workers)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    kwargs = dict(
        strategy=strategy, n_trials=n_trials, timeout=timeout, storage=url, study_name=name,
        out_dir=out_dir, hardware=hardware,
    )  # fmt: skip
    before = _evaluated(url, name)
    procs = []
    for i in range(workers):
        wcfg = replace(cfg, strategy=replace(cfg.strategy, seed=cfg.strategy.seed + i))
        p = ctx.Process(target=_worker, args=(i, wcfg, kwargs, queue), name=f"search-worker-{i}")
        p.start()
        procs.append(p)
    results: dict[int, tuple[int, str | None]] = {}
    bar = tqdm(desc=f"trials ({workers} workers)", unit="trial", disable=not progress)
    try:
        while len(results) < workers:
            with contextlib.suppress(Exception):  # queue.Empty
                i, ran, err = queue.get(timeout=poll)
                results[i] = (ran, err)
                continue
            if all(not p.is_alive() for p in procs):
                time.sleep(poll)  # a last result may still be in the pipe
                while not queue.empty():
                    i, ran, err = queue.get()
                    results[i] = (ran, err)
                break
            if progress:
                bar.n = max(_evaluated(url, name) - before, 0)
                bar.refresh()
    except BaseException:  # e.g. SIGTERM/Ctrl-C of the launcher: the workers stop too
        for p in procs:
            p.terminate()
        raise
    finally:
        for p in procs:
            p.join()
        bar.close()
    errors = [err for _, err in results.values() if err]
    if errors:
        if errors[0].startswith(REFERENCE_FAILED):
            raise ReferenceFailed(errors[0].removeprefix(REFERENCE_FAILED))
        raise ValueError(errors[0])
    died = workers - len(results)
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    recovered = 0
    if died:
        lease = join(url, study)  # no worker of ours is alive: fail what the dead left RUNNING
        recovered = lease.recovered
        lease.release()
    total = evaluated(study)
    out = Path(out_dir) / name
    rep = None
    if reports:
        from .report import write_reports
        from .trial import context_of

        rep = write_reports(study, cfg, out, context=context_of(cfg), storage=url)
    space = SearchSpace.from_config(cfg)
    run = RunResult(
        name, url, strategy or cfg.strategy.name, out, sum(r for r, _ in results.values()),
        total, space.size, rep,
    )  # fmt: skip
    return WorkersResult(run, workers, died, recovered)
