"""cocotb on the *exported* network tops (Verilator/Icarus via ``SIM``), and that it can fail.

The reference outputs come from ``qspec.integer_forward`` here in pytest and go
to the testbench (``hdl/rtlsim/tb_network.py``, the one ``python -m hdl verify
network`` runs) in a file.  Beats: the shipped
dataset's whole test split (with labels, so the hardware's accuracy is checked
against the reference's) plus seeded random input codes (edge-heavy) up to
``BEATS``, under random stalls on both streams; then a full-rate run for
latency and II.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Const

import hdl.network
from hdl.arith.adder_tree import Emitter
from hdl.export import ExportedModule, export_network, to_verilog
from hdl.network import NetworkTop
from hdl.rtlsim.verify import random_rows
from qspec.integer_forward import integer_forward
from qspec.network import QuantisedNetwork
from tests import sim as simlib
from tests.test_network_sim import (
    SPECS,
    ProtocolBug,
    load_net,
    wrong_weight_factory,
)

BEATS = 1100


def vectors(name: str, net: QuantisedNetwork, beats: int = BEATS) -> dict:
    """The test split (labelled) then random codes: inputs and reference outputs."""
    inputs = json.loads((SPECS / f"{name}_relu_8b.inputs.json").read_text())
    codes = inputs["codes"][:beats]
    codes += random_rows(net, beats - len(codes), random.Random(f"{name}-{beats}"))
    expected = np.asarray(integer_forward(net, codes))
    labels = inputs["labels"][: len(inputs["codes"][:beats])]
    predicted = np.argmax(expected[: len(labels)], axis=1)
    return {
        "codes": codes,
        "expected": expected.tolist(),
        "labels": labels,
        "reference_accuracy": float(np.mean(predicted == np.asarray(labels))),
        "in_width": net.input_fmt.width,
        "out_width": net.output_fmt.width,
    }


def run_network(
    sim: str,
    name: str,
    mod: ExportedModule | tuple[str, str, int],
    test_dir: Path,
    beats: int = BEATS,
    seed: int = 1,
) -> tuple[simlib.Result, dict, dict]:
    """Build ``mod`` (or ``(top, verilog, latency)``) and run both network tests against
    the reference for spec ``name``; returns the result, the vectors and the tb's reports
    (per cocotb test)."""
    top, verilog, latency = (
        (mod.name, mod.verilog, mod.latency) if isinstance(mod, ExportedModule) else mod
    )
    build = simlib.build(sim, top, {f"{top}.v": verilog})
    argmax = isinstance(mod, ExportedModule) and mod.params["argmax"]
    vec = vectors(name, load_net(name), beats) | {"latency": latency, "argmax": argmax}
    (test_dir / "vectors.json").write_text(json.dumps(vec))
    env = {
        "HWFIRST_TB_VECTORS": str(test_dir / "vectors.json"),
        "HWFIRST_TB_RESULT": str(test_dir / "result.json"),
        "HWFIRST_TB_SEED": str(seed),
    }
    result = simlib.run(build, "hdl.rtlsim.tb_network", test_dir, env, seed=seed)
    report_file = test_dir / "result.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    return result, vec, report


CASES = [  # (spec, impl, stages, argmax)
    ("jsc-tiny", "adder_tree", 0, False),
    ("jsc-tiny", "adder_tree", 2, False),
    ("jsc-toy", "adder_tree", 0, False),
    ("jsc-toy", "adder_tree", 1, True),
    ("jsc-toy", "mul", (1, 0, 2), False),
]


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", simlib.sim_params())
@pytest.mark.parametrize(
    ("name", "impl", "stages", "argmax"),
    [
        pytest.param(*c, id=f"{c[0]}-{c[1]}-p{c[2]}{'-argmax' * c[3]}".replace(" ", ""))
        for c in CASES
    ],
)
def test_exported_network(
    sim: str, name: str, impl: str, stages, argmax: bool, tmp_path: Path
) -> None:
    mod = export_network(load_net(name), impl=impl, stages=stages, argmax=argmax)
    result, vec, report = run_network(sim, name, mod, tmp_path)
    simlib.assert_passed(result, expected_tests=2)
    assert len(vec["codes"]) >= 1000 and len(vec["labels"]) > 300
    stalls, full = report["network_random_stalls"], report["network_full_rate"]
    assert stalls["beats_out"] == stalls["beats"] == len(vec["codes"])
    assert stalls["mismatches"] == stalls["class_mismatches"] == 0
    assert stalls["hardware_accuracy"] == vec["reference_accuracy"] > 0.8
    assert stalls["labelled"] == len(vec["labels"]) and not stalls["errors"]
    assert full["beats_out"] == full["beats"] == 200 and full["latencies"] == [mod.latency]


def export_clocked(name: str, impl: str, mhz: float, argmax: bool = False) -> ExportedModule:
    """The exported network with every Linear group placed for ``mhz``, as
    ``NetworkTop(..., clock_mhz=mhz)`` builds it."""
    net = load_net(name)
    mod = export_network(net, impl=impl, argmax=argmax, clock_mhz=mhz)
    top = NetworkTop(net, impl=impl, clock_mhz=mhz, argmax=argmax)
    assert [m.name for m in mod.layer_modules] == [ly.module_name() for ly in top.layers]
    assert all(f"c{mhz}_" in m.name for m in mod.layer_modules)
    assert mod.latency == top.latency == sum(ly.placement.latency for ly in top.layers)
    return mod


CLOCKED = [  # (spec, impl, MHz, argmax)
    ("jsc-tiny", "adder_tree", 200, False),
    ("jsc-toy", "adder_tree_nosub", 200, True),
]


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", simlib.sim_params())
@pytest.mark.parametrize(
    ("name", "impl", "mhz", "argmax"),
    [pytest.param(*c, id=f"{c[0]}-{c[1]}-c{c[2]}{'-argmax' * c[3]}") for c in CLOCKED],
)
def test_exported_clocked_network(
    sim: str, name: str, impl: str, mhz: int, argmax: bool, tmp_path: Path
) -> None:
    """The clock-placed registers in the exported Verilog: bit-exact under stalls, and at
    full rate out after exactly the placements' latency."""
    mod = export_clocked(name, impl, mhz, argmax)
    assert mod.latency > 3  # registers inside the adder trees, not just between layers
    result, vec, report = run_network(sim, name, mod, tmp_path)
    simlib.assert_passed(result, expected_tests=2)
    stalls, full = report["network_random_stalls"], report["network_full_rate"]
    assert stalls["beats_out"] == stalls["beats"] == len(vec["codes"])
    assert stalls["mismatches"] == stalls["class_mismatches"] == 0
    assert stalls["hardware_accuracy"] == vec["reference_accuracy"] > 0.8
    assert full["beats_out"] == full["beats"] == 200 and full["latencies"] == [mod.latency]


# --- the checks can fail -----------------------------------------------------


def assert_caught(result: simlib.Result, message: str) -> None:
    log = result.log.read_text(errors="replace")
    assert result.num_tests == 2, result.log_tail()
    assert result.num_failed >= 1, f"broken design passed:\n{result.log_tail()}"
    assert message in log, f"failure without {message!r}:\n{result.log_tail()}"


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", simlib.sim_params())
def test_wrong_weight_is_caught(sim: str, tmp_path: Path) -> None:
    net = load_net("jsc-tiny")
    wrong = export_network(net, stages=1, layer_factory=wrong_weight_factory("fc1", 4, 7))
    assert wrong.verilog != export_network(net, stages=1).verilog
    result, _, report = run_network(sim, "jsc-tiny", wrong, tmp_path, beats=400)
    assert_caught(result, "beats mismatch")
    assert report["network_random_stalls"]["mismatches"] > 0


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", simlib.sim_params())
@pytest.mark.parametrize(
    ("bug", "message"),
    [
        ("valid_needs_ready", "changed with o.ready"),
        ("ignores_ready", "o.payload changed while stalled"),
        ("repeats", "already delivered"),
    ],
)
def test_stream_protocol_bugs_are_caught(sim: str, bug: str, message: str, tmp_path: Path) -> None:
    dut = ProtocolBug(load_net("jsc-tiny"), bug=bug, stages=1)
    top = f"net_broken_{bug}"
    result, _, _ = run_network(sim, "jsc-tiny", (top, to_verilog(dut, top), 1), tmp_path, 400)
    assert_caught(result, message)


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", simlib.sim_params())
def test_wrong_class_index_is_caught(
    sim: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The logits are right but the class index above them is always 0."""
    monkeypatch.setattr(hdl.network, "first_argmax", lambda values: Const(0, 4))
    wrong = export_network(load_net("jsc-tiny"), argmax=True)
    monkeypatch.undo()
    assert wrong.verilog != export_network(load_net("jsc-tiny"), argmax=True).verilog
    result, _, _ = run_network(sim, "jsc-tiny", wrong, tmp_path, beats=400)
    assert_caught(result, "class indices mismatch")


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", simlib.sim_params())
def test_dropped_pipeline_register_is_caught(
    sim: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clocked export with one operand register inside an adder tree left out: the
    latency is as claimed, the data are not."""
    real = Emitter.register
    dropped: list[str] = []

    def register(self, v, name):
        if not dropped and re.search(r"_p2$", name):
            dropped.append(name)
            return v
        return real(self, v, name)

    monkeypatch.setattr(Emitter, "register", register)
    wrong = export_clocked("jsc-tiny", "adder_tree", 200)
    monkeypatch.undo()
    assert dropped and wrong.verilog != export_clocked("jsc-tiny", "adder_tree", 200).verilog
    result, _, report = run_network(sim, "jsc-tiny", wrong, tmp_path, beats=400)
    assert_caught(result, "beats mismatch")
    assert report["network_random_stalls"]["mismatches"] > 0
