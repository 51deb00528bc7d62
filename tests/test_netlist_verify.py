"""``hdl verify network --netlist ecp5|ice40``: the *mapped* netlist against the reference.

The design is synthesised by the metrics' own flow (``hdl.synth.netlist``), Yosys writes
the mapped top as Verilog, and the network testbench simulates it with Yosys's cell
models on the same beats as the RTL check.  Here: jsc-tiny's netlists are bit-exact on
both targets, and a netlist with one bit of one LUT's truth table flipped (one feeding an
output flop, at an input combination the beats reach, see :func:`flip_lut`) gives
mismatches and exit 1.  The cell-model selection and the option checks run without a simulator.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

import hdl.cli
import hdl.synth.netlist as netlist_mod
from hdl.design import load_design
from hdl.rtlsim import verify_network
from hdl.synth.netlist import cell_models, netlist_cells, synthesise_netlist
from tests import sim as simlib
from tests.conftest import ROOT

TINY = ROOT / "verilog_out" / "net_jsc_tiny_e7ab254609_adder_tree_p1.v"
TARGETS = ("ecp5", "ice40")
# few beats: a netlist simulates far slower than the RTL (Icarus: ~0.2 s a beat for
# jsc-tiny with stalls), and a flipped LUT below is reached within them
SAMPLES, RANDOM = 24, 16
LUT = {"ecp5": ("LUT4", "INIT", ("A", "B", "C", "D")),
       "ice40": ("SB_LUT4", "LUT_INIT", ("I0", "I1", "I2", "I3"))}  # fmt: skip


def _sim_params() -> list:
    """Icarus only: a Verilator build of a mapped netlist is minutes of C++ (jsc-tiny ECP5:
    11 min here), which would double the suite; ``python -m hdl verify network --netlist T
    --sim verilator`` runs it (bit-exact on both targets, README)."""
    return [p for p in simlib.sim_params() if p.values == ("icarus",)]


@pytest.fixture(scope="module")
def netlists() -> dict[str, str]:
    d = load_design(TINY)
    return {t: synthesise_netlist(d.verilog, d.top, t).verilog for t in TARGETS}


_PORTS = re.compile(r"\(\n((?:\s*\.\w+\([^()]*\),?\n)+)\s*\);")


def _conns(ports: str) -> dict[str, str]:
    return dict(re.findall(r"\.(\w+)\(([^()]*)\)", ports))


def flip_lut(netlist: str, target: str) -> tuple[str, str]:
    """``netlist`` with one bit of one LUT's truth table flipped, and which LUT.

    The LUT: the first one computing the data input of an output-payload flop (jsc-tiny:
    the saturation of a logit bit); the bit: its inputs all 0 (the unused ones are tied
    to 0), which the beats reach (a logit bit 0 without saturation).  Both targets' flops
    are found by their ``Q`` on ``o__payload`` (ECP5 ``TRELLIS_FF.DI``, iCE40 ``SB_DFF*.D``).
    """
    cell, param, _ = LUT[target]
    into_outputs = set()
    for m in _PORTS.finditer(netlist):
        c = _conns(m[1])
        if c.get("Q", "").startswith("o__payload["):
            into_outputs.add(c.get("DI", c.get("D")))
    head = rf"^\s*{cell} #\(\n\s*\.{param}\(16'h([0-9a-f]+)\)\n"
    for m in re.finditer(head + r"\s*\) (\S+) +\((.*?)\);", netlist, re.M | re.S):
        if _conns(m[3]).get("Z" if target == "ecp5" else "O") in into_outputs:
            init = int(m[1], 16) ^ 1
            mutated = netlist[: m.start(1)] + f"{init:04x}" + netlist[m.end(1) :]
            return mutated, f"{m[2]} {param} {m[1]} -> {init:04x}"
    raise AssertionError(f"no {cell} drives an output flop")


# --- without a simulator -------------------------------------------------------------


def test_cell_models_are_those_the_netlist_uses(netlists):
    for target, text in netlists.items():
        models, defines = cell_models(target, text, "icarus")
        defined = set(re.findall(r"^\s*module\s+(\S+?)\s*\(", models, re.M))
        assert netlist_cells(text) <= defined, target
        # only what is needed: ECP5's TRELLIS_COMB (unparsable by Icarus 11) stays out
        assert "TRELLIS_COMB" not in defined and "SB_RAM40_4K" not in defined
        if target == "ice40":
            assert defines == {"NO_ICE40_DEFAULT_ASSIGNMENTS": "1"}


def test_a_cell_without_a_model_is_named():
    fake = 'module t(input a, output z);\n  MULT18X18D #(\n    .REG_INPUTA_CLK("NONE")\n  ) m (.A0(a));\nendmodule\n'  # noqa: E501
    with pytest.raises(ValueError, match="MULT18X18D"):
        cell_models("ecp5", fake, "verilator")


def test_bad_netlist_option(capsys):
    with pytest.raises(ValueError, match=r"^netlist must be one of ecp5\|ice40, got 'xc7'"):
        verify_network(TINY, netlist="xc7")
    with pytest.raises(ValueError, match="^netlist_verilog needs netlist"):
        verify_network(TINY, netlist_verilog="module x; endmodule")
    assert hdl.cli.main(["verify", "network", str(TINY), "--netlist", "xc7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--netlist" in err[0] and "ecp5" in err[0]
    for extra, want in (
        ([], "--netlist-file needs --netlist"),
        (["--netlist", "ice40"], "--netlist-file has no module 'net_jsc_tiny_"),
    ):
        argv = ["verify", "network", str(TINY), "--netlist-file", str(ROOT / "README.md")]
        assert hdl.cli.main(argv + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and want in err[0], err


# --- simulated ------------------------------------------------------------------------


@pytest.mark.cocotb
@pytest.mark.slow  # Icarus: ~40-180 s each on a busy 2-core VM
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("sim", _sim_params())
def test_tiny_netlist_bit_exact(sim, target):
    simlib.require(sim)
    r = verify_network(
        TINY,
        sim=sim,
        netlist=target,
        samples=SAMPLES,
        random_codes=RANDOM,
        build_dir=simlib.cache_dir(),
    )
    assert r.passed, (r.errors, r.log)
    assert r.netlist == target and r.netlist_flow == "abc9" and r.synth_seconds > 0
    assert r.mismatches == 0 and r.beats == SAMPLES + RANDOM


@pytest.mark.cocotb
@pytest.mark.slow  # Icarus: ~40-180 s each on a busy 2-core VM
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("sim", _sim_params())
def test_flipped_lut_is_caught(sim, target, netlists, monkeypatch, capsys):
    simlib.require(sim)
    mutated, what = flip_lut(netlists[target], target)
    assert mutated != netlists[target]
    r = verify_network(
        TINY,
        sim=sim,
        netlist=target,
        netlist_verilog=mutated,
        samples=SAMPLES,
        random_codes=RANDOM,
        build_dir=simlib.cache_dir(),
    )
    assert not r.passed and r.mismatches > 0, f"{what}: not caught"
    assert r.netlist_flow is None and r.synth_seconds is None  # the given netlist ran
    # the command line: the same mutation through its synthesis step -> exit 1
    real = netlist_mod.synthesise_netlist

    def synthesise_then_flip(*a, **k):
        n = real(*a, **k)
        return dataclasses.replace(n, verilog=flip_lut(n.verilog, target)[0])

    monkeypatch.setattr(netlist_mod, "synthesise_netlist", synthesise_then_flip)
    argv = ["verify", "network", str(TINY), "--sim", sim, "--netlist", target]
    argv += ["--samples", str(SAMPLES), "--random", str(RANDOM)]
    monkeypatch.setenv("HWFIRST_SIM_BUILD", str(simlib.cache_dir()))
    assert hdl.cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "FAILED: not bit-exact" in out and f"{target} mapped netlist" in out
