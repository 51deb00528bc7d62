"""hdl.synth.network: per-layer synthesis through the cache, sums, crashes, flat vs per-layer."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from hdl.synth import SynthError, flow
from hdl.synth import yosys as ysys
from hdl.synth.cache import SynthCache
from hdl.synth.network import synthesise_network

# A hand-checkable "network": layer a (x[2k] & x[2k+1], 4 outputs -> 4 LUT4) used twice,
# then layer b (a 4-bit register, 4 FFs and no LUTs); the top's own glue ORs a0 and a1
# (4 LUT4).
AND4 = """module and4(input [7:0] x, output [3:0] y);
  assign y = {x[7] & x[6], x[5] & x[4], x[3] & x[2], x[1] & x[0]};
endmodule
"""
REG4 = """module reg4(input clk, input rst, input [3:0] x, output reg [3:0] y);
  always @(posedge clk) y <= x;
endmodule
"""
TOP = """module top(input clk, input rst, input [15:0] x, output [3:0] y);
  wire [3:0] a0, a1;
  and4 u0(.x(x[7:0]), .y(a0));
  and4 u1(.x(x[15:8]), .y(a1));
  reg4 r(.clk(clk), .rst(rst), .x(a0 | a1), .y(y));
endmodule
"""
SPEC = Path(__file__).parent / "data" / "jsc-tiny-4bit.spec.json"


def _module(name, verilog, latency=0):
    return SimpleNamespace(name=name, verilog=verilog, latency=latency)


def stub_network():
    return SimpleNamespace(
        name="top",
        verilog=TOP + AND4 + REG4,
        latency=1,
        initiation_interval=1,
        layer_modules=(_module("and4", AND4), _module("reg4", REG4, 1)),
        params={"layers": [{"module": "and4"}, {"module": "and4"}, {"module": "reg4"}]},
    )


@pytest.fixture
def yosys_runs(monkeypatch):
    """Counts the Yosys runs the flow starts."""
    calls = []
    real = flow.run_yosys_files

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(flow, "run_yosys_files", counting)
    return calls


@pytest.mark.parametrize("target", ["ecp5", "ice40"])
def test_exact_counts_and_repeated_layer_synthesised_once(target, tmp_path, yosys_runs):
    r = synthesise_network(None, target, exported=stub_network(), cache=SynthCache(tmp_path))
    assert r.instances == ("and4", "and4", "reg4")
    assert (r.layers["and4"].lut4, r.layers["and4"].ffs) == (4, 0)
    assert (r.layers["reg4"].lut4, r.layers["reg4"].ffs) == (0, 4)
    # the glue: the top with its layers as black boxes, which count as nothing
    assert (r.glue.lut4, r.glue.ffs, r.glue.cells) == (4, 0, 4)
    assert (r.total.lut4, r.total.ffs, r.total.carries, r.total.dsps) == (12, 4, 0, 0)
    assert r.total.lut_eq == 12 and r.total.latency == 1
    # and4 once although used twice, reg4, the glue
    assert r.synthesised == 2 and len(yosys_runs) == 3


def test_second_call_runs_no_yosys(tmp_path, yosys_runs):
    cache = SynthCache(tmp_path)
    first = synthesise_network(None, "ecp5", exported=stub_network(), cache=cache, flat=True)
    n = len(yosys_runs)
    assert n == 4  # two distinct layers + the glue + the flat top
    again = synthesise_network(None, "ecp5", exported=stub_network(), cache=cache, flat=True)
    assert len(yosys_runs) == n and again.synthesised == 0
    assert again.total == first.total and again.flat == first.flat
    assert again.total.cached and again.flat.cached


def test_flat_top_of_the_stub(tmp_path):
    r = synthesise_network(None, "ecp5", exported=stub_network(), cache=False, flat=True)
    # flat: the two and4 outputs OR-ed per bit feed the register: 4 LUT4 of 4 inputs
    assert (r.flat.lut4, r.flat.ffs) == (4, 4)
    assert r.flat.lut_eq < r.total.lut_eq


def test_crash_is_a_synth_error_and_never_cached(tmp_path, monkeypatch):
    """A Yosys run that stops before the end of its script (yowasp's silent exit in ABC9)."""

    def silent_exit(code, args, cwd, timeout):
        return 0, "Executing SYNTH_LATTICE pass.\nExecuting ABC9 pass.\n", False

    monkeypatch.setattr(ysys, "run_child", silent_exit)
    cache = SynthCache(tmp_path)
    with pytest.raises(SynthError, match="before the end of its script"):
        synthesise_network(None, "ecp5", exported=stub_network(), cache=cache)
    assert cache.count() == 0


def test_crash_falls_back_and_names_the_flow(tmp_path, monkeypatch):
    """abc9 crashing with and without -dff: classic abc maps the design, notes say so."""
    real = ysys.run_child

    def crash_in_abc9(code, args, cwd, timeout):
        script = (cwd / args[0]).read_text()
        if "abc -dress" not in script:
            return -6, "Executing SYNTH_LATTICE pass.\nExecuting ABC9 pass.\nAborted\n", False
        return real(code, args, cwd, timeout)

    monkeypatch.setattr(ysys, "run_child", crash_in_abc9)
    r = synthesise_network(None, "ecp5", exported=stub_network(), cache=SynthCache(tmp_path))
    assert r.total.lut4 == 12
    assert any("classic abc" in n for n in r.total.notes)


def test_ecp5_nodsp_maps_multipliers_to_luts():
    mul = "module m(input signed [7:0] a, b, output signed [15:0] y); assign y = a * b; endmodule"
    dsp = flow.synthesise(mul, "m", "ecp5", cache=False)
    nodsp = flow.synthesise(mul, "m", "ecp5", dsp=False, cache=False)
    assert dsp.dsps == 1 and nodsp.dsps == 0 and nodsp.lut_eq > 20


def test_per_layer_sum_vs_flat_on_jsc_tiny(tmp_path):
    export = pytest.importorskip("hdl.export")
    if not hasattr(export, "export_network"):
        pytest.skip("hdl.export.export_network not available")
    from qspec.network import QuantisedNetwork

    net = QuantisedNetwork.from_json(SPEC.read_text())
    r = synthesise_network(net, "ecp5", dsp=False, flat=True, cache=SynthCache(tmp_path))
    assert len(r.layers) == 1 and r.total.lut4 > 0
    # the flat top adds the stream handshake and output register around the same layer
    assert r.flat.ffs >= r.total.ffs
    diff = r.flat.lut_eq - r.total.lut_eq
    assert abs(diff) <= 0.1 * r.total.lut_eq + 8


@pytest.mark.parametrize(
    ("boxes", "fmax", "words"),
    [(("nope",), False, "blackboxes must name"), (("top",), False, "blackboxes must name"),
     (("and4",), True, "fmax cannot be measured")],
)  # fmt: skip
def test_blackboxes_bad_input_is_a_value_error(boxes, fmax, words):
    with pytest.raises(ValueError, match=words):
        flow.synthesise(TOP + AND4 + REG4, "top", "ecp5", blackboxes=boxes, fmax=fmax, cache=False)
