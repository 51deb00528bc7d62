"""A content-addressed cache of synthesis results, safe for concurrent processes.

The key is a SHA-256 over everything that determines the numbers (Verilog
text, top, target, options, tool versions); the value is the result's JSON.
Two backends, one interface:

* SQLite (default): ``<cache dir>/synth.sqlite3`` in WAL mode with a busy
  timeout, which serialises writers across processes on one machine;
  ``INSERT OR REPLACE`` of an identical value makes a race between two writers
  of the same key harmless.
* PostgreSQL: ``SynthCache(url="postgresql://...")``, or ``$HWFIRST_CACHE_URL``
  when no directory is given, keeps the results in the table
  ``hwfirst_synth_cache`` of that database, so processes on different machines
  (a search's workers sharing its study database) never synthesise the same
  layer twice.  The URL is a plain string: hdl knows nothing of the search.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import platformdirs

CACHE_ENV = "HWFIRST_CACHE_DIR"
CACHE_URL_ENV = "HWFIRST_CACHE_URL"  # a postgresql:// URL: the shared cache
DB_NAME = "synth.sqlite3"
PG_TABLE = "hwfirst_synth_cache"
PG_SCHEMES = ("postgresql", "postgres")
_WARNED: set[str] = set()  # databases already reported unusable by this process


def _warn_once(where: str, why: str) -> None:
    """One stderr line per database and process: the run goes on without it."""
    if where not in _WARNED:
        _WARNED.add(where)
        print(f"warning: synthesis cache {where} {why}", file=sys.stderr)


def default_cache_dir() -> Path:
    """``$HWFIRST_CACHE_DIR``, else the user's cache dir (platformdirs)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(platformdirs.user_cache_dir("hwfirst", appauthor=False))


def cache_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@functools.cache
def source_fingerprint(*packages: str) -> str:
    """SHA-256 over the ``.py`` sources (and installed versions) of ``packages``: a key for
    results derived from a spec rather than from the Verilog, which any change to the
    generator's code must invalidate."""
    h = hashlib.sha256()
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise ValueError(f"no package {name!r}")
        if spec.submodule_search_locations:  # a source package: hash its files
            for root in spec.submodule_search_locations:
                for f in sorted(Path(root).rglob("*.py")):
                    h.update(f"{name}/{f.relative_to(root)}".encode())
                    h.update(f.read_bytes())
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            h.update(f"{name}=={importlib.metadata.version(name)}".encode())
    return h.hexdigest()


def libpq_url(url: str) -> str:
    """``postgresql+psycopg://...`` (SQLAlchemy form) -> ``postgresql://...`` (libpq)."""
    scheme, sep, rest = url.partition("://")
    base = scheme.split("+", 1)[0]
    if not sep or base not in PG_SCHEMES:
        raise ValueError(f"cache url must start with postgresql://, got {url!r}")
    return f"postgresql://{rest}"


_PG: dict[tuple[str, int], Any] = {}  # (url, pid) -> an open autocommit connection


def _pg(url: str, fresh: bool = False):
    """This process's connection to ``url`` (the table is created on first use)."""
    import psycopg

    key = (url, os.getpid())  # a forked child must not share its parent's socket
    con = _PG.get(key)
    if con is None or con.closed or fresh:
        con = psycopg.connect(url, autocommit=True, connect_timeout=10)
        # another process may create it at the same moment
        with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {PG_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
                " created TIMESTAMPTZ DEFAULT now())"
            )
        _PG[key] = con
    return con


def _pg_run(url: str, sql: str, args: tuple = ()) -> list[tuple]:
    """Run one statement; a dropped connection is reopened once."""
    import psycopg

    for attempt in (0, 1):
        try:
            cur = _pg(url, fresh=attempt == 1).execute(sql, args)
            return cur.fetchall() if cur.description else []
        except psycopg.OperationalError:
            if attempt:
                raise
    raise AssertionError("unreachable")


class SynthCache:
    """Get/put JSON values by key; counts this instance's hits and misses.

    ``url``: a PostgreSQL database (else ``$HWFIRST_CACHE_URL`` when ``directory`` is
    ``None``); otherwise SQLite in ``directory`` (default :func:`default_cache_dir`).
    """

    def __init__(self, directory: Path | str | None = None, url: str | None = None):
        if url is None and directory is None:
            url = os.environ.get(CACHE_URL_ENV) or None
        self.url = None if url is None else libpq_url(url)
        self.directory = None
        self.path = None
        if self.url is None:
            self.directory = Path(directory) if directory is not None else default_cache_dir()
            self.path = self.directory / DB_NAME
        self.hits = self.misses = 0

    @property
    def where(self) -> str:
        """The database, for messages (a URL's password is not shown)."""
        if self.url is None:
            return str(self.path)
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.rsplit('@', 1)[-1]} (table {PG_TABLE})"

    def _connect(self) -> sqlite3.Connection:
        self.directory.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(
                "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
                " created TEXT DEFAULT CURRENT_TIMESTAMP)"
            )
        except BaseException:
            con.close()
            raise
        return con

    def _read_only(self) -> sqlite3.Connection | None:
        """A read-only open (a read-only directory cannot hold WAL's ``-shm``); ``None``
        when there is no usable database."""
        if not self.path.is_file():
            return None
        try:
            con = sqlite3.connect(f"{self.path.as_uri()}?mode=ro&immutable=1", uri=True)
            con.execute("SELECT 1 FROM results LIMIT 1").fetchall()
            return con
        except sqlite3.Error:
            return None

    def _open(self, writing: bool) -> sqlite3.Connection | None:
        """A connection, or ``None`` with one warning: a read-only or corrupt cache
        degrades to uncached synthesis (reads still served when the file is readable)."""
        try:
            return self._connect()
        except (sqlite3.Error, OSError) as e:
            con = self._read_only()
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            if con is None:
                _warn_once(self.where, f"is unusable ({why}): synthesising without a cache")
            else:
                _warn_once(self.where, f"is read-only ({why}): new results are not saved")
            if con is not None and writing:
                con.close()
                return None
            return con

    def _get(self, key: str) -> str | None:
        if self.url is not None:
            rows = _pg_run(self.url, f"SELECT value FROM {PG_TABLE} WHERE key = %s", (key,))
            return rows[0][0] if rows else None
        con = self._open(writing=False)
        if con is None:
            return None
        try:
            row = con.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as e:
            _warn_once(self.where, f"is unusable ({e}): synthesising without a cache")
            return None
        finally:
            con.close()
        return None if row is None else row[0]

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(value)

    def put(self, key: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, sort_keys=True)
        if self.url is not None:
            # the value is a function of the key: the first writer's copy is as good
            sql = f"INSERT INTO {PG_TABLE} (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING"
            _pg_run(self.url, sql, (key, text))
            return
        con = self._open(writing=True)
        if con is None:
            return
        try:
            with con:
                sql = "INSERT OR REPLACE INTO results (key, value) VALUES (?, ?)"
                con.execute(sql, (key, text))
        except sqlite3.Error as e:  # e.g. the disk filled up: the result is only not kept
            _warn_once(self.where, f"cannot store a result ({e}): not cached")
        finally:
            con.close()

    def count(self) -> int:
        """Number of stored results."""
        if self.url is not None:
            return _pg_run(self.url, f"SELECT COUNT(*) FROM {PG_TABLE}")[0][0]
        if not self.path.exists():
            return 0
        con = self._connect()
        try:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            con.close()
