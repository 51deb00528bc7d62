"""Process trees from /proc (Linux): the kill tests' shared helpers (a tool or simulator
child must not outlive its killed caller)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def children(pid: int) -> list[int]:
    """Live descendants of ``pid`` (from /proc; zombies are dead)."""
    out, todo = [], [pid]
    procs = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                procs[int(d.name)] = (fields[0], int(fields[1]))  # state, ppid
    while todo:
        p = todo.pop()
        for c, (state, ppid) in procs.items():
            if ppid == p and state != "Z":
                out.append(c)
                todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_caller(caller: subprocess.Popen, sig: str, kids: list[int]) -> list[int]:
    """Send ``caller`` the signal named ``sig``, wait for it, and give ``kids`` 5 s to end;
    those still alive."""
    caller.send_signal(getattr(signal, sig))
    caller.wait(timeout=30)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(k) for k in kids):
        time.sleep(0.1)
    return [k for k in kids if alive(k)]


def reap(caller: subprocess.Popen, kids: list[int]) -> None:
    """What a failing test left: the caller and any child (orphans are init's now)."""
    if caller.poll() is None:
        caller.kill()
        caller.wait()
    for k in kids:
        if alive(k):
            with contextlib.suppress(ProcessLookupError):
                os.kill(k, signal.SIGKILL)
