"""``--clock-mhz`` on ``python -m hdl export network`` / ``verify network``: the manifest
records the clock and each layer's placement as ``NetworkTop`` chose it, bad values exit 2
with one line naming the option and write nothing, and the clocked design simulates
bit-exact; the model and the synthesis cache key see the clock too."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
from amaranth.hdl import Fragment

import hdl.synth.network as synth_network
from hdl.cli import main
from hdl.export import export_network
from hdl.hwmodel import emitted_cached, predict_network
from hdl.network import NetworkTop
from hdl.resources import Resources
from qspec.network import QuantisedNetwork
from tests import sim as simlib

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "verilog_out" / "specs"
TOY = SPECS / "jsc-toy_relu_8b.json"
TINY8 = SPECS / "jsc-tiny_relu_8b.json"


def built_top(net: QuantisedNetwork, **kwargs) -> NetworkTop:
    """``NetworkTop(net, **kwargs)``, elaborated (as export does; and Amaranth then does
    not warn that it was never used)."""
    top = NetworkTop(net, **kwargs)
    Fragment.get(top, None)
    return top


def net_of(path: Path) -> QuantisedNetwork:
    return QuantisedNetwork.read(path, "SPEC")


def manifest(out: Path) -> dict:
    """``manifest.json`` as a consumer reads it."""
    return json.loads((out / "manifest.json").read_text())


def network_entry(out: Path) -> dict:
    (entry,) = [e for e in manifest(out)["modules"].values() if e["kind"] == "network"]
    return entry


def test_export_records_the_placement_networktop_chose(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "network", str(TOY), "--clock-mhz", "200", "--out", str(out)]) == 0
    assert "at 200 MHz (ecp5)" in capsys.readouterr().out
    entry = network_entry(out)
    top = built_top(net_of(TOY), clock_mhz=200.0)
    p = entry["params"]
    assert p["clock"] == {"mhz": 200.0, "target": "ecp5"}
    assert entry["latency"] == top.latency == sum(top.stages) > len(top.layers)
    assert entry["initiation_interval"] == 1 and p["stages"] == list(top.stages)
    assert entry["file"].endswith("_c200ecp5.v")
    for summary, layer in zip(p["layers"], top.layers, strict=True):
        placed, got = layer.placement, summary["placement"]
        em = emitted_cached(tuple(layer.layers), layer.impl)
        assert "c200_" in summary["module"] and summary["latency"] == placed.latency
        assert got == {
            "clock_mhz": 200.0,
            "target": "ecp5",
            "method": placed.method,
            "latency": placed.latency,
            "tail_stage": placed.tail_stage,
            "delay_ns": placed.delay_ns,
            "fmax_mhz": 1000.0 / placed.delay_ns,
            "met": placed.met,
            "ffs": placed.ffs,
            "boundary_ffs": placed.boundary_bits(em),
            "adders_per_stage": placed.adders_per_stage(em),
        }
        assert got["met"] and got["fmax_mhz"] >= 200.0
        assert len(got["boundary_ffs"]) == len(got["adders_per_stage"]) == got["latency"]
        assert sum(got["boundary_ffs"]) == got["ffs"]
        adders = sum(n.op in ("add", "neg") for n in em.reached)
        assert sum(got["adders_per_stage"]) == adders
    # the model predicts the same cycles
    assert predict_network(net_of(TOY), clock_mhz=200).latency == top.latency


def test_a_clock_the_model_cannot_meet_is_written_with_a_warning(tmp_path, capsys):
    out = tmp_path / "a"
    assert main(["export", "network", str(TOY), "--clock-mhz", "200", "--out", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err  # every layer met
    out = tmp_path / "b"
    assert main(["export", "network", str(TOY), "--clock-mhz", "600", "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    layers = network_entry(out)["params"]["layers"]
    slow = [ly for ly in layers if not ly["placement"]["met"]]
    assert slow and len(err) == len(slow)
    for line, ly in zip(err, slow, strict=True):
        assert f"warning: {ly['name']}: the model predicts" in line and "600 MHz" in line
        assert ly["placement"]["fmax_mhz"] < 600


def test_unclocked_manifest_has_no_clock_keys(tmp_path):
    out = tmp_path / "out"
    assert main(["export", "network", str(TOY), "--stages", "1", "--out", str(out)]) == 0
    p = network_entry(out)["params"]
    assert "clock" not in p and all("placement" not in ly for ly in p["layers"])
    assert network_entry(out)["file"].endswith("_adder_tree_p1.v")


def test_target_and_layer(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["export", "network", str(TOY), "--clock-mhz", "120", "--target", "ice40"]
    assert main([*args, "--layer", "fc2", "--out", str(out)]) == 0
    (entry,) = manifest(out)["modules"].values()
    top = built_top(net_of(TOY), clock_mhz=120.0, target="ice40")
    assert entry["kind"] == "linear_layer" and entry["latency"] == top.layers[1].latency
    assert entry["params"]["placement"]["target"] == "ice40"
    assert entry["params"]["stages"] == top.stages[1]
    ecp5 = export_network(net_of(TOY), clock_mhz=120.0)
    assert ecp5.name.endswith("_c120ecp5")
    assert ecp5.name != export_network(net_of(TOY), clock_mhz=120.0, target="ice40").name


BAD = [
    (["--clock-mhz", "0"], "--clock-mhz must be a number of MHz in [1, 2000], got '0'"),
    (["--clock-mhz", "-1"], "--clock-mhz must be a number of MHz in [1, 2000], got '-1'"),
    (["--clock-mhz", "x"], "--clock-mhz must be a number of MHz in [1, 2000], got 'x'"),
    (["--clock-mhz", "nan"], "--clock-mhz must be a number of MHz in [1, 2000], got 'nan'"),
    (["--clock-mhz", "2001"], "--clock-mhz must be a number of MHz in [1, 2000], got '2001'"),
    (["--clock-mhz", "200", "--stages", "2"], "--stages must be 0 with --clock-mhz"),
    (["--clock-mhz", "200", "--stages", "0,1,0"], "--stages must be 0 with --clock-mhz"),
    (["--clock-mhz", "200", "--impl", "mul"], "--clock-mhz needs --impl adder_tree|"),
    (["--target", "ice40"], "--target is only used with --clock-mhz"),
    (["--clock-mhz", "200", "--target", "xc7"], "argument --target: invalid choice: 'xc7'"),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_bad_clock_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(["export", "network", str(TOY), *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


@pytest.mark.parametrize(("extra", "message"), BAD[:1] + BAD[5:6] + BAD[8:9])
def test_verify_rejects_the_same(tmp_path, capsys, extra, message):
    from hdl.rtlsim import runner

    if runner.cocotb_problem() is not None:
        pytest.skip(runner.cocotb_problem())
    assert main(["verify", "network", str(TINY8), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_verify_of_an_exported_design_takes_no_clock(tmp_path, capsys):
    from hdl.rtlsim import runner

    if runner.cocotb_problem() is not None:
        pytest.skip(runner.cocotb_problem())
    assert (
        main(["export", "network", str(TINY8), "--clock-mhz", "200", "--out", str(tmp_path)]) == 0
    )
    capsys.readouterr()
    assert main(["verify", "network", str(tmp_path), "--clock-mhz", "200"]) == 2
    assert "--clock-mhz is only for a spec JSON" in capsys.readouterr().err


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", simlib.sim_params())
def test_clocked_design_simulates_bit_exact(sim, capsys, monkeypatch):
    """The verify path exports the clocked design and simulates it under stalls."""
    from hdl.rtlsim import runner

    simlib.require(sim)
    top = built_top(net_of(TINY8), clock_mhz=250.0)
    assert top.latency > 1  # registers inside the adder tree, not just the output
    argv = ["verify", "network", str(TINY8), "--clock-mhz", "250", "--sim", sim,
            "--samples", "60", "--random", "60", "--json"]  # fmt: skip
    monkeypatch.setenv(runner.BUILD_ENV, str(simlib.cache_dir()))
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["passed"] and r["mismatches"] == 0
    assert r["latency"] == r["expected_latency"] == top.latency
    assert r["stages"] == list(top.stages) and r["top"].endswith("_c250ecp5")
    assert r["clock_mhz"] == 250.0 and r["clock_target"] == "ecp5"


def test_synth_total_cache_key_holds_the_clock(monkeypatch):
    """A design synthesised without a clock is not the clocked one's cached total."""
    calls = []

    def fake(net, target, **kw):
        calls.append(kw.get("clock_mhz"))
        return types.SimpleNamespace(total=Resources("ecp5", lut4=1, latency=1))

    class Store(dict):
        def put(self, key, value):
            self[key] = value

    monkeypatch.setattr(synth_network, "synthesise_network", fake)
    store, net = Store(), net_of(TINY8)
    for clock in (None, 200.0, 200.0, None, 250.0):
        synth_network.synthesise_network_total(net, cache=store, clock_mhz=clock)
    assert calls == [None, 200.0, 250.0] and len(store) == 3


def test_report_names_the_clock():
    """The text report says which clock (and whose model) placed the registers; an
    unclocked design's report says nothing of one."""
    from hdl.rtlsim import VerifyResult, format_result

    fields = dict(sim="icarus", sim_version="Icarus Verilog 12.0", top="t", design="s.json",
                  impl="adder_tree", stages=(3, 1), dataset=None, samples=0, random_codes=5,
                  stalls=True, seed=1, mismatches=0, class_mismatches=0, hw_accuracy=None,
                  ref_accuracy=None, latency=4, expected_latency=4, latencies=(4,), errors=(),
                  tests_run=1, tests_failed=0, build_seconds=0.0, run_seconds=0.0,
                  log=None)  # fmt: skip
    clocked = format_result(VerifyResult(**fields, clock_mhz=212.5, clock_target="ice40"))
    design = next(line for line in clocked.splitlines() if line.startswith("design"))
    assert design.endswith(
        "(adder_tree, stages 3,1, placed for 212.5 MHz by the ice40 delay model)"
    )
    assert "MHz" not in format_result(VerifyResult(**fields))
