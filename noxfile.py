"""Sessions: tests (default), lint, export, mutants. torch is pinned through constraints.txt."""

import glob
import os

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"

PYTHON = "3.11"
CONSTRAINTS = ("-c", "constraints.txt")


def _install(session: nox.Session, extras: str) -> None:
    session.install(*CONSTRAINTS, "-e", f".[{extras}]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit, property, Amaranth-simulator and cocotb tests (SIM=verilator|icarus|all)."""
    _install(session, "test")
    workers = "2" if (os.cpu_count() or 1) > 1 else "0"
    session.run("pytest", "-n", workers, *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def export(session: nox.Session) -> None:
    """Regenerate verilog_out/: LeakyReLU modules, jsc-tiny/toy network tops (no torch needed)."""
    session.install(*CONSTRAINTS, "-e", ".")
    session.run("python", "-m", "hdl.canonical", "verilog_out")


@nox.session(python=PYTHON)
def synth_tables(session: nox.Session) -> None:
    """Synthesise the LeakyReLU shift/mult/baseline grid; update README, docs/, bench/results/."""
    _install(session, "test")
    session.run("python", "bench/leaky_synth_table.py", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Every bench/bench_*.py (e.g. models.json, leaky.json in bench/results/); posargs to each."""
    _install(session, "test")
    for script in sorted(glob.glob("bench/bench_*.py")):
        session.run("python", script, *session.posargs)


@nox.session(python=PYTHON)
def study(session: nox.Session) -> None:
    """LeakyReLU study (issue #10) -> docs/leaky_study.md, PNGs, bench/results/leaky_study.json."""
    _install(session, "search,fast")
    session.run("python", "-m", "studies.leaky", *session.posargs)


@nox.session(name="search", python=PYTHON)
def search_session(session: nox.Session) -> None:
    """Quantisation search: search/configs/default.toml -> results/default/ (posargs: a config)."""
    _install(session, "search,fast")
    args = session.posargs or ["search/configs/default.toml"]
    session.run("python", "-m", "search", "run", *args)


@nox.session(python=PYTHON)
def verify(session: nox.Session) -> None:
    """Simulate the best design(s) of `nox -s search` against the integer reference (cocotb)."""
    _install(session, "search,fast,sim")
    session.run("python", "-m", "search", "verify", *session.posargs)


MUTANTS_REPORT = """
import json, pathlib
KILLED = {1, 3, 24, -24, 36, 152, 255}  # mutmut: failing test, pytest error, timeout
total = {"killed": 0, "all": 0}
for meta in sorted(pathlib.Path("mutants/qspec").glob("*.py.meta")):
    codes = list(json.loads(meta.read_text())["exit_code_by_key"].values())
    killed = sum(c in KILLED for c in codes)
    survived = sum(c == 0 for c in codes)
    unchecked = sum(c is None for c in codes)
    total["killed"] += killed
    total["all"] += len(codes)
    rate = 100 * killed / len(codes) if codes else 100.0
    name = meta.name[: -len(".meta")]
    print(f"qspec/{name:20} {killed:4}/{len(codes):<4} killed {rate:5.1f} %  survived {survived}"
          f"  not run {unchecked}")
print(f"{'total':26} {total['killed']:4}/{total['all']:<4} killed")
"""


@nox.session(python=PYTHON)
def mutants(session: nox.Session) -> None:
    """mutmut over qspec/ with its fast tests ([tool.mutmut]); prints the kill rate per file."""
    _install(session, "test")
    session.install("mutmut==3.8.1")
    session.run("mutmut", "run", "--max-children", "2", *session.posargs, success_codes=[0, 1])
    session.run("python", "-c", MUTANTS_REPORT)
