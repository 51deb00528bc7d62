"""Tool child processes that do not outlive their caller (Yosys, nextpnr, simulators).

A child runs in its own session, so a timeout or an exception in the caller (Ctrl-C, or
a SIGTERM that :func:`qspec.cli.run_cli` turned into one) kills its whole process group;
on Linux it also gets ``PR_SET_PDEATHSIG`` so it dies when the caller is SIGKILLed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1
try:  # loaded before any fork: preexec_fn should do as little as it can
    _LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
except OSError:
    _LIBC = None


def die_with_parent(parent: int):
    """A ``preexec_fn``: SIGKILL this child when ``parent`` dies (Linux)."""

    def preexec() -> None:
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def spawn(cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen:
    """``Popen(cmd, **kwargs)`` in its own session, dying with this process."""
    return subprocess.Popen(
        list(cmd), start_new_session=True, preexec_fn=die_with_parent(os.getpid()), **kwargs
    )


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s process group (its own session: the child and its children)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run(cmd: Sequence[str], *, cwd: Path | str, env=None, stdout=None, stderr=None) -> int:
    """Run ``cmd`` to its end in its own group; its exit status.  Any exception while it
    runs (KeyboardInterrupt, a SIGTERM turned into one) kills the group first."""
    proc = spawn(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
    try:
        return proc.wait()
    except BaseException:
        kill_group(proc)
        proc.wait()
        raise
