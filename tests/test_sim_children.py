"""cocotb's runner runs its commands through :mod:`hdl.children`: each in its own process
group, killed with its caller (SIGTERM or SIGKILL), as Yosys and nextpnr are."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hdl.rtlsim import runner
from tests.procs import children, kill_caller, reap

cocotb_runner = pytest.importorskip("cocotb_tools.runner")
ROOT = Path(__file__).resolve().parent.parent


def test_cocotbs_runner_still_runs_commands_where_we_replace_it():
    """A cocotb that ran its commands elsewhere would bypass the replacement silently."""
    params = list(inspect.signature(cocotb_runner.Runner._execute_cmds).parameters)
    assert params == ["self", "cmds", "cwd", "stdout"]
    src = inspect.getsource(cocotb_runner)
    assert src.count("subprocess.run(") == 4  # _execute_cmds, the wave viewer, two --version


@pytest.mark.parametrize("sim", runner.SIMULATORS)
def test_commands_run_in_their_own_group(sim, tmp_path):
    r = runner._runner(sim)
    out = tmp_path / "out"
    code = "import os; print(os.getsid(0), os.getpgrp(), os.getpid())"
    with open(out, "w") as f:
        r._execute_cmds([[sys.executable, "-c", code]], tmp_path, f)
    sid, pgrp, pid = map(int, out.read_text().split())
    assert sid == pgrp == pid != os.getsid(0)  # a session of its own
    with pytest.raises(RuntimeError, match="return code: 3"):  # cocotb's error, as before
        r._execute_cmds([[sys.executable, "-c", "raise SystemExit(3)"]], tmp_path)


CALLER = """
import sys
from qspec.cli import run_cli
from hdl.rtlsim import runner

SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]
# a simulator that runs for long (with sys.argv[1]: through a child of its own, as make
# runs the compiler)
SPAWN = "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(120)"

def body():
    cmd = [sys.executable, "-c", SPAWN, *SLEEP] if sys.argv[1:] else SLEEP
    runner._runner("icarus")._execute_cmds([cmd], ".")
    return 0

sys.exit(run_cli("sim", body))
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("sig, grandchild", [("SIGKILL", False), ("SIGTERM", True)])
def test_a_killed_caller_leaves_no_simulator(sig, grandchild, tmp_path):
    """SIGKILL: the simulator dies with its caller (its own children would not: nothing
    runs in the caller to kill them); SIGTERM: its whole group, children too (cocotb's
    ``subprocess.run`` kills only the command it started)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-c", CALLER] + (["grandchild"] if grandchild else [])
    caller = subprocess.Popen(argv, cwd=tmp_path, env=env)
    kids: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(kids) < 1 + grandchild:
            assert caller.poll() is None, "the caller ended early"
            time.sleep(0.1)
            kids = children(caller.pid)
        assert kids, "no simulator child seen"
        time.sleep(0.3)  # the child is past its preexec (PDEATHSIG set)
        assert not kill_caller(caller, sig, kids), "a simulator outlived its caller"
    finally:
        reap(caller, kids)
