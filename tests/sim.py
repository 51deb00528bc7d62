"""The tests' layer over :mod:`hdl.rtlsim.runner` (discovery, cached builds, results XML).

What is pytest-specific lives here:

* ``SIM=verilator|icarus|all`` picks the simulators (default: Verilator when
  usable, else Icarus).  A requested simulator that is missing skips its tests
  with the reason, except under ``CI=true`` with ``SIM=all``, where it fails.
* Builds go to ``tests/.sim_build`` (or ``$HWFIRST_SIM_BUILD``), keyed by
  Verilog content, shared by xdist workers through a file lock.
* :func:`run` puts the repository root on the simulator's ``PYTHONPATH`` (the
  testbenches ``tests/tb_*.py`` import as ``tests.tb_*``) and, like the package,
  reads the results XML instead of trusting the simulator's exit code;
  :func:`assert_passed` turns it into an assertion.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from hdl.rtlsim import runner as _runner
from hdl.rtlsim.runner import (  # noqa: F401 (re-exported for the tests)
    REWRITE_FILES,
    SIMULATORS,
    TIMESCALE,
    VERILATOR_ARGS,
    Build,
    Result,
    SimulationError,
    check_passed,
    default_simulator,
    sim_environ,
    simulator_problem,
    tool_version,
    verilator_root,
)

TESTS_DIR = Path(__file__).resolve().parent
ROOT = TESTS_DIR.parent


def cache_dir() -> Path:
    return Path(os.environ.get(_runner.BUILD_ENV, TESTS_DIR / ".sim_build"))


def requested_simulators() -> list[str]:
    """Simulators named by ``SIM`` (default: Verilator when usable, else Icarus)."""
    value = os.environ.get("SIM", "").strip().lower()
    if value == "all":
        return list(SIMULATORS)
    if value in SIMULATORS:
        return [value]
    if value:
        raise pytest.UsageError(f"SIM must be one of verilator|icarus|all, got {value!r}")
    # through this module's name, so a test can monkeypatch it
    return [default_simulator(lambda s: simulator_problem(s))]


def strict() -> bool:
    """In CI with ``SIM=all`` a missing simulator is an error, not a skip."""
    return (
        os.environ.get("CI", "").lower() in ("1", "true", "yes")
        and os.environ.get("SIM", "").strip().lower() == "all"
    )


def require(sim: str) -> None:
    """Skip (or, under :func:`strict`, fail) the calling test when ``sim`` is unusable."""
    problem = _runner.cocotb_problem() or simulator_problem(sim)
    if problem is None:
        return
    if strict():
        pytest.fail(f"CI=true and SIM=all but {problem}", pytrace=False)
    pytest.skip(problem)


def sim_params() -> list:
    """``pytest.param`` per requested simulator, for ``@pytest.mark.parametrize("sim", ...)``."""
    return [pytest.param(s, id=s) for s in requested_simulators()]


def build(sim: str, toplevel: str, sources: Mapping[str, str]) -> Build:
    """Build ``sources`` (file name -> Verilog text) for ``sim`` under :func:`cache_dir`."""
    require(sim)
    try:
        return _runner.build(sim, toplevel, sources, cache_dir(), keep=None)  # a fixed set
    except SimulationError as e:
        raise AssertionError(str(e)) from e


def run(
    b: Build,
    test_module: str,
    test_dir: Path,
    extra_env: Mapping[str, str] | None = None,
    testcase: str | Sequence[str] | None = None,
    seed: int = 1,
) -> Result:
    """Run cocotb ``test_module`` (``tests.tb_*`` or ``hdl.rtlsim.tb_*``) on a build."""
    try:
        return _runner.run(b, test_module, test_dir, extra_env, testcase, seed, python_path=[ROOT])
    except SimulationError as e:
        raise AssertionError(str(e)) from None


def assert_passed(result: Result, expected_tests: int | None = None) -> None:
    """The run executed at least one (or exactly ``expected_tests``) cocotb test and none failed."""
    problem = check_passed(result, expected_tests)
    assert problem is None, f"{problem}\n{result.log_tail()}"
