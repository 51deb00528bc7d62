"""Where a study lives, and how workers sharing it recover from a dead worker.

Three storages, one URL each (``--storage`` or ``[storage] url``):

* ``sqlite:///FILE`` (the default, ``<out>/<study>/study.db``): one process.
* ``journal:///ABS/PATH/study.journal`` (or a path ending ``.journal``): Optuna's
  ``JournalStorage`` on a ``JournalFileBackend``; several processes on one machine
  (``--workers N``).
* ``postgresql://USER:PW@HOST/DB`` (``postgresql+psycopg://`` too): Optuna's
  ``RDBStorage`` with heartbeats; several machines.  The synthesis cache then lives in
  the same database (``hdl.synth.cache``, table ``hwfirst_synth_cache``).

A worker killed with SIGKILL leaves its trial RUNNING.  With PostgreSQL the trial's
heartbeat stops, so once it is ``grace`` seconds old the next worker to start a trial
(or a resumed run) fails it and ``RetryHeartbeatStaleTrialCallback`` enqueues its point again.
SQLite and journal files have no heartbeats; every process running trials on them holds
a shared ``flock`` on ``FILE.workers``, and a process that can take it exclusively knows
no worker is alive, so every RUNNING trial is a dead worker's: it is failed and retried
the same way.  A trial failed like this carries no ``error`` attribute, so it does not
count against the budget and brute force enqueues its point again if no retry holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

DEFAULT_OUT = Path("results")
STORAGE_SCHEMES = ("sqlite", "journal", "postgresql", "mysql")
JOURNAL_SUFFIXES = (".journal", ".log")
HEARTBEAT_ENV = "HWFIRST_HEARTBEAT"  # seconds between heartbeats (grace: 3x); tests lower it
HEARTBEAT_INTERVAL = 10
MAX_RETRY = 3  # a point whose worker dies this often is left failed
CACHE_URL_ENV = "HWFIRST_CACHE_URL"  # hdl.synth.cache reads it (hdl never imports search)


def default_path(study: str, out_dir: str | Path = DEFAULT_OUT, *, journal: bool = False) -> Path:
    """``<out_dir>/<study>/study.db`` (or ``study.journal``), absolute."""
    return (Path(out_dir) / study / ("study.journal" if journal else "study.db")).resolve()


def storage_url(
    url: str | None, study: str, out_dir: str | Path = DEFAULT_OUT, *, workers: int = 1
) -> str:
    """``url``, or the default file of ``study``; a plain path is SQLite (journal if it ends
    ``.journal``/``.log``).  The default is the journal file when ``workers > 1`` or when
    only the journal file exists, so a study started with workers resumes without them."""
    if url is None:
        db, journal = default_path(study, out_dir), default_path(study, out_dir, journal=True)
        if workers > 1 or (journal.exists() and not db.exists()):
            return f"journal://{journal}"
        return f"sqlite:///{db}"
    if "://" not in url:
        scheme = "journal://" if url.endswith(JOURNAL_SUFFIXES) else "sqlite:///"
        return scheme + url
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme not in STORAGE_SCHEMES:
        raise ValueError(
            f"storage url must start with {'|'.join(s + '://' for s in STORAGE_SCHEMES)} "
            f"(or be a file path), got {url!r}"
        )
    return url


def kind(url: str) -> str:
    """``sqlite``, ``journal`` or the RDB scheme (``postgresql``, ``mysql``)."""
    return url.split("://", 1)[0].split("+", 1)[0]


def local_file(url: str) -> Path | None:
    """The file of a one-machine storage (SQLite, journal), else ``None``."""
    if kind(url) == "sqlite":
        return Path(url.removeprefix("sqlite:///"))
    if kind(url) == "journal":
        return Path(url.removeprefix("journal://"))
    return None


def heartbeat() -> tuple[int, int]:
    """(interval, grace) in seconds for RDB storages; ``$HWFIRST_HEARTBEAT`` sets the interval."""
    try:
        interval = max(1, int(os.environ.get(HEARTBEAT_ENV, HEARTBEAT_INTERVAL)))
    except ValueError:
        raise ValueError(f"{HEARTBEAT_ENV} must be an integer number of seconds") from None
    return interval, 3 * interval


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url`` (files: the directory is created)."""
    import optuna
    from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend

    path = local_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if kind(url) == "journal":
        return JournalStorage(JournalFileBackend(str(path)))
    if kind(url) == "sqlite":
        # SQLite is one process (see the module doc), but reports may read while it writes
        store = RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
        _fast_sqlite(store.engine)
        return store
    interval, grace = heartbeat()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(
            rdb_url(url),
            engine_kwargs={"pool_pre_ping": True},
            heartbeat_interval=interval,
            grace_period=grace,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
        )


def _sqlite_pragmas(con, _record) -> None:
    # WAL + synchronous=NORMAL: a commit no longer waits for fsync (a trial writes ~15
    # attributes, each its own commit: ~0.8 s -> ~0.3 s per trial on a busy disk).  A
    # killed process still loses no committed trial; only a power cut may lose the last.
    cur = con.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _fast_sqlite(engine) -> None:
    from sqlalchemy import event

    event.listen(engine, "connect", _sqlite_pragmas)
    engine.dispose()  # the connection made while creating the tables predates the listener


def rdb_url(url: str) -> str:
    """SQLAlchemy's ``postgresql://`` means psycopg2; use psycopg 3 (installed) unless a
    driver is named."""
    if url.startswith("postgresql://"):
        import importlib.util

        if importlib.util.find_spec("psycopg2") is None:
            return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def synth_cache_url(url: str) -> str | None:
    """The synthesis cache of a multi-machine storage: the same PostgreSQL database."""
    return url if kind(url) == "postgresql" else None


@dataclass
class Lease:
    """This process is running trials of a study (see the module doc); release at the end."""

    lock: int | None  # the fd holding the shared flock (one-machine storages)
    recovered: int  # dead workers' trials this process failed (and retried) on joining
    env: tuple[str, str | None] | None = None  # the cache URL variable's previous value

    def release(self) -> None:
        if self.lock is not None:
            os.close(self.lock)  # drops the flock
            self.lock = None
        if self.env is not None:
            name, old = self.env
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
            self.env = None


def _running(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def fail_dead(study: optuna.Study, trials: list[optuna.trial.FrozenTrial]) -> int:
    """Fail ``trials`` (a dead worker's) and enqueue their points again; how many failed."""
    import copy

    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
    n = 0
    for t in trials:
        try:
            if not study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:  # it finished (or another process failed it) meanwhile
            continue
        retry(study, copy.deepcopy(study._storage.get_trial(t._trial_id)))
        n += 1
    return n


def join(url: str, study: optuna.Study) -> Lease:
    """Register this process as a worker of ``study``: fail what dead workers left RUNNING,
    and point the synthesis cache at the storage's database (PostgreSQL)."""
    import optuna

    env = None
    cache = synth_cache_url(url)
    if cache is not None and CACHE_URL_ENV not in os.environ:
        env = (CACHE_URL_ENV, os.environ.get(CACHE_URL_ENV))
        os.environ[CACHE_URL_ENV] = cache
    path = local_file(url)
    if path is None:  # RDB: heartbeats say who is dead
        before = len(_running(study))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        return Lease(None, max(before - len(_running(study)), 0), env)
    fd = os.open(f"{path}.workers", os.O_RDWR | os.O_CREAT, 0o644)
    recovered = 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass  # other workers are alive: their RUNNING trials are theirs
    else:
        recovered = fail_dead(study, _running(study))
    fcntl.flock(fd, fcntl.LOCK_SH)
    return Lease(fd, recovered, env)


@contextlib.contextmanager
def joined(url: str, study: optuna.Study):
    lease = join(url, study)
    try:
        yield lease
    finally:
        lease.release()
