"""The hostile-input harness: run a CLI on bad input and judge the outcome.

A case is *clean* when the command exits with an allowed code (2 for bad input, 1 for a
real tool failure, 0 where the input is accepted), raised no traceback, printed its
complaint as one line on stderr, and left every pre-existing file under the watched
directories byte-identical (type, content and mode).  Each case names its class (the
row of the table in ``bench/hostile_table.py``), so the same cases measure the code
before and after a fix.

Cases run in-process (``main(argv)``) so the suite stays fast; the few that need a real
process (PATH, signals) use :func:`run_process`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MAINS = {  # the CLI entry points, imported lazily so a broken one fails only its cases
    "hdl": "hdl.cli",
    "search": "search.cli",
    "models": "models.cli",
    "synth": "hdl.synth.cli",
    "studies.leaky": "studies.leaky.cli",
}


@dataclass
class Outcome:
    code: int | None  # None: the command raised instead of exiting
    stdout: str
    stderr: str
    error: str = ""  # the traceback, when the command raised

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]


def run_main(cli: str, argv: Sequence[str], *, cwd: Path | None = None) -> Outcome:
    """``python -m <cli> argv`` in this process (stdout/stderr captured)."""
    import importlib

    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main = importlib.import_module(MAINS[cli]).main
                code = main(list(argv))
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
            except BaseException:  # noqa: BLE001 - the point is to see it
                return Outcome(None, out.getvalue(), err.getvalue(), traceback.format_exc())
    finally:
        os.chdir(old)
    return Outcome(0 if code is None else int(code), out.getvalue(), err.getvalue())


def run_process(
    argv: Sequence[str], *, cwd: Path | None = None, env: dict | None = None, timeout=120
) -> Outcome:
    """``argv`` as a real process (for PATH, signals and stdin)."""
    p = subprocess.run(
        list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    error = p.stderr if "Traceback (most recent call last)" in p.stderr else ""
    return Outcome(p.returncode, p.stdout, p.stderr, error)


# --- what was on disk -----------------------------------------------------------------------


def _entry(p: Path) -> tuple:
    st = p.lstat()
    if stat.S_ISREG(st.st_mode):
        return ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(p.read_bytes()).hexdigest())
    if stat.S_ISDIR(st.st_mode):
        return ("dir", stat.S_IMODE(st.st_mode))
    if stat.S_ISLNK(st.st_mode):
        return ("link", os.readlink(p))
    return ("special", stat.S_IFMT(st.st_mode))


def snapshot(roots: Iterable[Path]) -> dict[str, tuple]:
    """Every path under ``roots`` (not following links) with its type, mode and content."""
    snap: dict[str, tuple] = {}
    for root in roots:
        root = Path(root)
        if not root.exists() and not root.is_symlink():
            continue
        snap[str(root)] = _entry(root)
        if root.is_dir() and not root.is_symlink():
            for p in root.rglob("*"):
                snap[str(p)] = _entry(p)
    return snap


def changed(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """Pre-existing paths that were removed or changed (new files are not counted here)."""
    return sorted(p for p, e in before.items() if after.get(p) != e)


# --- a case and its verdict -----------------------------------------------------------------

_WATCHED: dict[Path, list[Path]] = {}  # tmp -> the case's watched roots, while it runs
_READY: dict[Path, dict[str, tuple]] = {}  # tmp -> the snapshot taken by ready()


def ready(tmp: Path) -> None:
    """Call in a case's ``run`` once its files are set up, just before the command: the
    verdict then protects what the setup wrote too (without it, only what existed before
    ``run``)."""
    tmp = Path(tmp)
    if tmp in _WATCHED:
        _READY[tmp] = snapshot(_WATCHED[tmp])


@dataclass
class Case:
    """One bad input: ``run(tmp)`` prepares files under ``tmp`` and returns the outcome."""

    cls: str  # the row of the table ("names", "writes", "storage", ...)
    id: str
    run: Callable[[Path], Outcome]
    exits: tuple[int, ...] = (2,)
    watch: Callable[[Path], Iterable[Path]] = field(default=lambda tmp: [tmp])
    check: Callable[[Path, Outcome], str | None] | None = None  # extra: a reason, or None
    one_line: bool = True  # stderr holds exactly one line (progress bars are off)


def verdict(case: Case, tmp: Path) -> str | None:
    """``None`` if ``case`` is handled cleanly, else why not (one line)."""
    watched = list(case.watch(tmp))
    before = snapshot(watched)
    _WATCHED[tmp] = watched
    try:
        out = case.run(tmp)
    except subprocess.TimeoutExpired:
        return "hung (timeout)"
    finally:
        _WATCHED.pop(tmp, None)
        before = _READY.pop(tmp, before)
    if out.error:
        last = out.error.strip().splitlines()[-1]
        return f"traceback: {last[:200]}"
    if out.code not in case.exits:
        return f"exit {out.code} (allowed {case.exits}); stderr: {out.stderr.strip()[-200:]!r}"
    if case.one_line and 2 in case.exits and out.code == 2 and len(out.lines) != 1:
        return f"{len(out.lines)} stderr lines: {out.stderr.strip()[-300:]!r}"
    lost = changed(before, snapshot(watched))
    if lost:
        return f"changed or removed: {', '.join(lost[:5])}"
    if case.check is not None:
        return case.check(tmp, out)
    return None


def params(cases: Sequence[Case]):
    """pytest parameters, one per case, named ``cls/id``."""
    import pytest

    return [pytest.param(c, id=f"{c.cls}/{c.id}") for c in cases]


def python(*argv: str) -> list[str]:
    return [sys.executable, *argv]
