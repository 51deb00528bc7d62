"""File I/O shared by ``hdl``, ``models`` and ``search``: a written file is whole or absent,
never written through something that is not a regular file, and a read file is named in
the one-line error when it cannot be read.

Writes go to a temporary file beside the target, which is then renamed over it
(:func:`atomic_write`); several files that belong together are staged first and renamed
only once all of them are on disk (:func:`atomic_write_many`).  A target that exists and
is not a regular file (a device, FIFO, socket, directory, or a symlink to one) is refused:
renaming over it would destroy the node.  Every failure is a :class:`WriteError`.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

Content = str | bytes | Callable[[IO[Any]], Any]
BOM = "\ufeff"

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


class WriteError(ValueError):
    """An output file cannot be written (one line naming it); a CLI exits 2 with it."""


class ReadError(ValueError):
    """An input file cannot be read as text or JSON (one line naming it)."""


def _kind(st: os.stat_result) -> str:
    return _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")


def check_output(path: str | Path) -> Path:
    """``path`` is absent or a regular file (or a symlink to one), else a :class:`WriteError`."""
    path = Path(path)
    try:
        st = path.stat()  # follows a symlink: what it points at is what would be lost
    except FileNotFoundError:
        return path
    except OSError as e:
        raise WriteError(f"cannot write {str(path)!r}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        link = " (a symlink)" if path.is_symlink() else ""
        raise WriteError(
            f"cannot write {str(path)!r}: it exists and is {_kind(st)}{link}, not a regular file"
        )
    return path


def _stage(path: Path, content: Content) -> str:
    """Write ``content`` to a new temporary file beside ``path``; its name."""
    check_output(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise WriteError(f"cannot write {str(path)!r}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode() if isinstance(content, str) else content)
        os.chmod(tmp, 0o644)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise WriteError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
        raise
    return tmp


def atomic_write(path: str | Path, content: Content) -> Path:
    """Write ``content`` (text, bytes, or a function given the open binary file) to ``path``.

    Readers never see a half-written file, and a failure leaves any previous file
    untouched; a :class:`WriteError` names ``path``.
    """
    return atomic_write_many({Path(path): content})[0]


def atomic_write_many(files: Mapping[str | Path, Content]) -> list[Path]:
    """Write several files all or nothing: every one is staged before any is renamed into
    place; on failure the staged files (and any of this call's renames that created a new
    file) are removed, and files that existed before are left as they were (a rename that
    fails midway is the only case that can leave some replaced)."""
    staged: list[tuple[Path, str]] = []
    try:
        for p, content in files.items():
            staged.append((Path(p), _stage(Path(p), content)))
    except BaseException:
        for _, tmp in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
    created: list[Path] = []
    try:
        for i, (p, tmp) in enumerate(staged):
            check_output(p)  # what another process may have put there meanwhile
            new = not p.exists()
            try:
                os.replace(tmp, p)
            except OSError as e:
                raise WriteError(f"cannot write {str(p)!r}: {e.strerror}") from None
            staged[i] = (p, "")
            if new:
                created.append(p)
    except BaseException:
        for _, tmp in staged:
            if tmp:
                Path(tmp).unlink(missing_ok=True)
        for p in created:
            p.unlink(missing_ok=True)
        raise
    return [p for p, _ in staged]


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


# --- reading --------------------------------------------------------------------------------


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of file ``path`` (a leading BOM dropped); a :class:`ReadError`
    ``<what> '<path>': ...`` when it is missing, not a regular file (a FIFO would block),
    unreadable or not text."""
    path = Path(path)
    where = f"{what} {str(path)!r}"
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ReadError(f"{where}: is {_kind(st)}, not a file")
        data = path.read_bytes()
    except OSError as e:
        raise ReadError(f"{where}: cannot read: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ReadError(f"{where}: not UTF-8 text (a binary file?)") from None
    if "\x00" in text:
        raise ReadError(f"{where}: not text (it holds NUL bytes; a binary file?)")
    return text.removeprefix(BOM)


def loads_json(text: str, where: str) -> Any:
    """``json.loads``; a :class:`ReadError` starting with ``where`` for bad or too deep JSON."""
    try:
        return json.loads(text.removeprefix(BOM))
    except json.JSONDecodeError as e:
        raise ReadError(f"{where}: not valid JSON: {e}") from None
    except RecursionError:
        raise ReadError(f"{where}: JSON nested too deeply") from None


def read_json(path: str | Path, what: str) -> Any:
    """The JSON document in file ``path`` (see :func:`read_text`, :func:`loads_json`)."""
    return loads_json(read_text(path, what), f"{what} {str(Path(path))!r}")
