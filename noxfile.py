"""Sessions: tests (default), lint, export. torch is pinned through constraints.txt."""

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
    """Regenerate the canonical Verilog set and manifest in verilog_out/ (no torch needed)."""
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
    session.run("python", "-m", "search", "study", *session.posargs)


@nox.session(name="search", python=PYTHON)
def search_session(session: nox.Session) -> None:
    """Quantisation search: search/configs/default.toml -> results/default/ (posargs: a config)."""
    _install(session, "search,fast")
    args = session.posargs or ["search/configs/default.toml"]
    session.run("python", "-m", "search", "run", *args)
