"""A content-addressed SQLite cache of synthesis results, safe for concurrent processes.

The key is a SHA-256 over everything that determines the numbers (Verilog
text, top, target, options, tool versions); the value is the result's JSON.
SQLite in WAL mode with a busy timeout serialises writers across processes;
``INSERT OR REPLACE`` of an identical value makes a race between two writers
of the same key harmless.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import platformdirs

CACHE_ENV = "HWFIRST_CACHE_DIR"
DB_NAME = "synth.sqlite3"


def default_cache_dir() -> Path:
    """``$HWFIRST_CACHE_DIR``, else the user's cache dir (platformdirs)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(platformdirs.user_cache_dir("hwfirst", appauthor=False))


def cache_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class SynthCache:
    """Get/put JSON values by key; counts this instance's hits and misses."""

    def __init__(self, directory: Path | str | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.path = self.directory / DB_NAME
        self.hits = self.misses = 0

    def _connect(self) -> sqlite3.Connection:
        self.directory.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(
            "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
            " created TEXT DEFAULT CURRENT_TIMESTAMP)"
        )
        return con

    def get(self, key: str) -> dict[str, Any] | None:
        con = self._connect()
        try:
            row = con.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone()
        finally:
            con.close()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, value: dict[str, Any]) -> None:
        con = self._connect()
        try:
            with con:
                con.execute(
                    "INSERT OR REPLACE INTO results (key, value) VALUES (?, ?)",
                    (key, json.dumps(value, sort_keys=True)),
                )
        finally:
            con.close()

    def count(self) -> int:
        """Number of stored results."""
        if not self.path.exists():
            return 0
        con = self._connect()
        try:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            con.close()
