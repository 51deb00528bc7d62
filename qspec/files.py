"""Atomic file writes shared by ``hdl`` and ``models``: a file is whole or absent."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | Path, content: str | bytes | Callable[[IO[Any]], Any]) -> Path:
    """Write ``content`` (text, bytes, or a function given the open binary file) to ``path``.

    The data goes to a temporary file in the same directory, which is then renamed
    over ``path``: readers never see a half-written file, and a failure leaves any
    previous file untouched.  Raises ``OSError`` when the directory is unusable.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode() if isinstance(content, str) else content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_writable_dir(option: str, path: str | Path) -> Path:
    """``path`` is (or can be made) a writable directory, else a one-line ``ValueError``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} must be a directory, but {str(path)!r} is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{option}: cannot create directory {str(path)!r}: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{option}: directory {str(path)!r} is not writable")
    return path
