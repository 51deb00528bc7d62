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

A study file is repaired or refused, never damaged (:func:`open_storage`): a journal whose
last record was cut (a killed writer, a truncated copy) has that tail moved to
``FILE.partial-<offset>`` under Optuna's own journal lock before anything is appended; a
journal corrupt in the middle, a file that is not a SQLite database, a directory, a missing
driver or an unreachable server is one line naming it (:class:`StorageError`).  Readers
(``read_only=True``) never create or change a file.  The study directory stays inside
``--out`` (:func:`study_dir`), and URL passwords are never stored or printed (:func:`redact`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

DEFAULT_OUT = Path("results")
STORAGE_SCHEMES = ("sqlite", "journal", "postgresql", "mysql")
CREATE_RETRIES = 4  # a new SQLite file being created by another process: 0.25 .. 2 s apart
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database
PIP_NAMES = {"MySQLdb": "mysqlclient", "psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]"}
# scheme://user:PASSWORD@ (SQLAlchemy's URL grammar: a password holds no '@')
_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:)[^\s@'\"]+@")
JOURNAL_SUFFIXES = (".journal", ".log")
HEARTBEAT_ENV = "HWFIRST_HEARTBEAT"  # seconds between heartbeats (grace: 3x); tests lower it
HEARTBEAT_INTERVAL = 10
MAX_RETRY = 3  # a point whose worker dies this often is left failed
CACHE_URL_ENV = "HWFIRST_CACHE_URL"  # hdl.synth.cache reads it (hdl never imports search)


class StorageError(ValueError):
    """A storage that cannot be used as asked (one line naming the file or URL; exit 2)."""


def redact(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _PASSWORD.sub(r"\1***@", text)


def study_dir(study: str, out_dir: str | Path = DEFAULT_OUT) -> Path:
    """``<out_dir>/<study>``, absolute; refused unless strictly inside ``out_dir`` (a study
    name is not a path: ``..`` or an absolute name would write elsewhere)."""
    out = Path(os.path.abspath(out_dir))
    d = Path(os.path.normpath(out / study))
    if d == out or out not in d.parents:
        raise StorageError(
            f"--study (or storage.study) {study!r}: its directory {d} must be inside "
            f"--out {out}; use a plain name"
        )
    return d


def default_path(study: str, out_dir: str | Path = DEFAULT_OUT, *, journal: bool = False) -> Path:
    """``<out_dir>/<study>/study.db`` (or ``study.journal``), absolute."""
    return (study_dir(study, out_dir) / ("study.journal" if journal else "study.db")).resolve()


def storage_url(
    url: str | None, study: str, out_dir: str | Path = DEFAULT_OUT, *, workers: int = 1
) -> str:
    """``url``, or the default file of ``study``; a plain path is SQLite (journal if it ends
    ``.journal``/``.log``).  The default is the journal file when ``workers > 1`` or when
    only the journal file exists, so a study started with workers resumes without them.
    The study directory must lie inside ``out_dir``; an RDB URL needs its driver."""
    study_dir(study, out_dir)  # reports go there, whatever the storage
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
        raise StorageError(
            f"--storage (or storage.url) must start with "
            f"{'|'.join(s + '://' for s in STORAGE_SCHEMES)} (or be a file path), "
            f"got {redact(url)!r}"
        )
    if scheme not in ("sqlite", "journal"):
        _check_driver(url)
    return url


def _check_driver(url: str) -> None:
    """An RDB URL whose SQLAlchemy dialect or DB-API driver is missing: one line with the
    package to install (SQLAlchemy would fail later, mid-run, with an ImportError)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    shown = redact(url)
    try:
        u = make_url(rdb_url(url))
        dialect = u.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as e:
        raise StorageError(f"--storage {shown}: {_first_line(e)}") from None
    try:
        dialect.import_dbapi()
    except ImportError as e:
        module = (e.name or u.drivername).split(".")[0]
        pip = PIP_NAMES.get(module, module)
        raise StorageError(
            f"--storage {shown}: the {u.drivername} driver is not installed "
            f"(pip install {pip}, or name an installed one: {u.get_backend_name()}+DRIVER://)"
        ) from None


def _first_line(e: BaseException) -> str:
    """The first line of ``e``'s message (its type when it has none)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


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


def open_storage(url: str, *, read_only: bool = False) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``.

    Files: the directory is created; a journal's cut last record is set aside
    (:func:`repair_journal`); a file that is no journal or SQLite database is refused.
    ``read_only`` (reports, verify): a missing file is an error, nothing is created or
    repaired, SQLite pragmas that rewrite the header are skipped.  Every failure to open is
    a :class:`StorageError` naming the file (or the URL, password redacted)."""
    path = local_file(url)
    if path is not None:
        _check_file(path, kind(url), read_only)
    try:
        return _open(url, path, read_only)
    except StorageError:
        raise
    except Exception as e:  # SQLAlchemy, Optuna's replay, OSError: name what failed
        where = path if path is not None else redact(url)
        raise StorageError(f"storage {where}: cannot open: {_clean(e, url)}") from None


def _open(url: str, path: Path | None, read_only: bool) -> optuna.storages.BaseStorage:
    import optuna
    from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    if path is not None and not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    if kind(url) == "journal":
        lock = JournalFileSymlinkLock(str(path))  # the backend's own (default) lock
        tail = None
        if read_only:
            tail = _journal_tail(path)
            _check_journal(path, tail)
        else:
            repair_journal(path, lock)
        try:
            store = JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
        except Exception as e:
            bad = _first_bad_record(path)
            if bad is None:
                raise
            raise StorageError(
                f"{path}: not a readable Optuna journal: the record at byte {bad} is corrupt "
                f"({_first_line(e)}); the file is left as it is"
            ) from None
        if tail is not None:
            print(f"warning: {path}: partial last record at byte {tail} ignored (read only; "
                  f"the next run sets it aside)", file=sys.stderr)  # fmt: skip
        return store
    if kind(url) == "sqlite":
        fresh = not path.exists() or path.stat().st_size == 0
        # SQLite is one process (see the module doc), but reports may read while it writes
        kwargs = {"engine_kwargs": {"connect_args": {"timeout": 60}}}
        for attempt in range(CREATE_RETRIES + 1):
            try:
                store = RDBStorage(url, **kwargs)
                break
            except Exception:
                # processes creating one new file at once race on its tables (IntegrityError,
                # "table already exists"): a loser retries and finds them made
                if not fresh or read_only or attempt == CREATE_RETRIES:
                    raise
                time.sleep(0.25 * 2**attempt)
        if not fresh:
            _quick_check(store.engine, path)
        if not read_only:
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


def _clean(e: BaseException, url: str) -> str:
    """The first line of ``e``, without the URL's password (drivers may echo the URL)."""
    text = getattr(e, "orig", None) or e  # SQLAlchemy wraps the driver's error
    msg = redact(_first_line(text))
    with contextlib.suppress(Exception):
        from sqlalchemy.engine import make_url

        pw = make_url(url).password
        if pw:
            msg = msg.replace(str(pw), "***")
    return msg


def _check_file(path: Path, what: str, read_only: bool) -> None:
    """Refuse a directory, a reader's missing file, and a file that is no SQLite database."""
    if path.is_dir():
        raise StorageError(f"{path}: is a directory, not a {what} file")
    if not path.exists():
        if read_only:
            raise StorageError(f"{path}: no such {what} file")
        return
    if what != "sqlite":
        return
    with path.open("rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if head == SQLITE_MAGIC or (not head and not read_only):  # an empty file: a new database
        return
    found = "an empty file" if not head else f"starts {head[:16]!r}"
    raise StorageError(
        f"{path}: not a SQLite database ({found}; a study file starts 'SQLite format 3'); "
        f"the file is left as it is"
    )


def _quick_check(engine, path: Path) -> None:
    """``PRAGMA quick_check`` (a cut or damaged file fails here, not mid-run)."""
    with engine.connect() as con:
        rows = [r[0] for r in con.exec_driver_sql("PRAGMA quick_check").fetchall()]
    if rows != ["ok"]:
        raise StorageError(
            f"{path}: damaged SQLite database ({rows[0]}); the file is left as it is"
        )
    engine.dispose()


# --- journal files: a cut last record is set aside, a corrupt middle refused ------------------


def _record(line: bytes) -> bool:
    """A complete journal record: one JSON object with an ``op_code``, newline-terminated."""
    if not line.endswith(b"\n"):
        return False
    try:
        doc = json.loads(line)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return False
    return isinstance(doc, dict) and isinstance(doc.get("op_code"), int)


def _journal_tail(path: Path) -> int | None:
    """The byte offset of an incomplete last line (``None``: the journal ends cleanly).
    Reads only the last line."""
    size = path.stat().st_size
    if size == 0:
        return None
    with path.open("rb") as f:
        start, chunk = size, 1 << 16
        while start > 0:  # find the newline before the last line
            start = max(0, start - chunk)
            f.seek(start)
            block = f.read(size - start)
            cut = block.rfind(b"\n", 0, len(block) - 1)
            if cut >= 0:
                start += cut + 1
                break
        f.seek(start)
        last = f.read()
    return None if _record(last) else start


def _check_journal(path: Path, tail: int | None) -> None:
    """Refuse a journal with a corrupt record before its ``tail``, or no complete record."""
    if tail is None:
        return
    bad = _first_bad_record(path, tail)
    if bad is not None or tail == 0:
        raise StorageError(
            f"{path}: not a readable Optuna journal: the record at byte {bad or 0} is "
            f"corrupt; the file is left as it is"
        )


def _first_bad_record(path: Path, end: int | None = None) -> int | None:
    """The offset of the first line before ``end`` that is no complete record."""
    offset = 0
    with path.open("rb") as f:
        for line in f:
            if end is not None and offset >= end:
                return None
            if not _record(line):
                return offset
            offset += len(line)
    return None


def repair_journal(path: Path, lock) -> int | None:
    """Set a cut last record aside before anything is appended; the offset it was cut at.

    Optuna skips an unterminated last line when reading but appends right after it, which
    fuses the two into one corrupt line and makes the whole journal unreadable.  The check
    runs again under ``lock`` (the one every Optuna writer holds while appending), so a
    record being written right now is never mistaken for a cut one.  The tail goes to
    ``FILE.partial-<offset>`` (nothing is deleted); a whole JSON record missing only its
    newline gets the newline.  A corrupt record before the tail, or a file with no complete
    record, is refused and left untouched."""
    checked = _journal_tail(path) if path.exists() else None
    if checked is None:
        return None
    # complete records never change (Optuna only appends): scan them before locking, so
    # the lock is held for milliseconds (Optuna breaks a lock held for 30 s)
    _check_journal(path, checked)
    lock.acquire()
    try:
        offset = _journal_tail(path)
        if offset is None:  # a writer finished its record, or another worker repaired it
            return None
        if offset != checked:
            _check_journal(path, offset)
        with path.open("r+b") as f:
            f.seek(offset)
            tail = f.read()
            if _record(tail + b"\n"):  # complete, only the newline is missing
                f.seek(0, os.SEEK_END)
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())
                print(f"warning: {path}: its last record (byte {offset}) had no newline; "
                      f"added", file=sys.stderr)  # fmt: skip
                return offset
            side = path.with_name(f"{path.name}.partial-{offset}")
            fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # never overwrite
            with os.fdopen(fd, "wb") as s:
                s.write(tail)
                s.flush()
                os.fsync(s.fileno())
            f.truncate(offset)
            f.flush()
            os.fsync(f.fileno())
    finally:
        lock.release()
    print(
        f"warning: {path}: partial last record at byte {offset} ({len(tail)} bytes) moved "
        f"to {side}; resuming from the complete records",
        file=sys.stderr,
    )
    return offset


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
