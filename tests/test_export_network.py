"""Network export: ``export_network``, ``python -m hdl export network``, and its errors."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hdl.cli import main
from hdl.design import read_manifest
from hdl.export import export_network, network_module_name
from qspec.integer_forward import integer_forward
from qspec.network import QuantisedNetwork
from tests.test_network_sim import SPECS, load_net

CONTRACT = [
    "clk",
    "i__payload",
    "i__ready",
    "i__valid",
    "o__payload",
    "o__ready",
    "o__valid",
    "rst",
]
TOY = SPECS / "jsc-toy_relu_8b.json"
ROOT = SPECS.parent.parent


def header(verilog: str, name: str) -> list[str]:
    ports = re.search(rf"^module {name}\(([^)]*)\);", verilog, re.M)
    assert ports, f"no module {name}"
    return sorted(p.strip() for p in ports.group(1).split(","))


@pytest.mark.parametrize("stages", [0, 2, [1, 0, 1]])
def test_port_contract_and_self_contained_file(stages) -> None:
    net = load_net("jsc-toy")
    mod = export_network(net, stages=stages)
    assert header(mod.verilog, mod.name) == CONTRACT
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", mod.name)
    assert f"input [{16 * 8 - 1}:0] i__payload;" in mod.verilog
    assert f"output [{10 * 8 - 1}:0] o__payload;" in mod.verilog
    # every distinct layer module once, each instantiated by its content-derived name
    names = [m.name for m in mod.layer_modules]
    assert len(set(names)) == len(names) == 3
    for m in mod.layer_modules:
        assert len(re.findall(rf"^module {m.name}\(", mod.verilog, re.M)) == 1
        assert re.search(rf"^\s*{m.name} \w+ \(", mod.verilog, re.M), f"{m.name} not instantiated"
        assert header(m.verilog, m.name) == sorted(p.name for p in m.ports)
    assert mod.verilog.count("(* top =") == 1  # only the network top is marked as top
    assert mod.latency == (sum(mod.params["stages"]) or 1)
    assert mod.initiation_interval == 1


def test_same_layer_same_module_in_any_network() -> None:
    """A layer's module name depends on the layer, not on the network around it."""
    net = load_net("jsc-toy")
    other = dataclasses.replace(net, name="other")
    a, b = export_network(net, stages=1), export_network(other, stages=1)
    assert a.name != b.name
    assert [m.name for m in a.layer_modules] == [m.name for m in b.layer_modules]
    assert [m.verilog for m in a.layer_modules] == [m.verilog for m in b.layer_modules]
    fc2 = export_network(net, stages=1, layer="fc2")
    assert fc2.name == a.layer_modules[1].name and fc2.verilog == a.layer_modules[1].verilog
    changed = [list(r) for r in net.layers[2].weight]
    changed[0][0] ^= 1
    net2 = dataclasses.replace(
        net, layers=(*net.layers[:2], dataclasses.replace(net.layers[2], weight=changed),
                     *net.layers[3:])
    )  # fmt: skip
    c = export_network(net2, stages=1)
    assert [m.name for m in c.layer_modules][::2] == [m.name for m in a.layer_modules][::2]
    assert c.layer_modules[1].name != a.layer_modules[1].name  # fc2 changed
    assert c.name != a.name


def test_top_name_encodes_impl_and_stages() -> None:
    net = load_net("jsc-tiny")
    assert network_module_name(net, "mul", (2,)).endswith("_mul_p2")
    assert network_module_name(net, "adder_tree", (1, 0, 2)).endswith("_adder_tree_p1_0_2")
    assert network_module_name(net, "mul", (1, 1)) == network_module_name(net, "mul", (1,))


def test_cli_writes_verilog_spec_vectors_manifest(tmp_path: Path, capsys) -> None:
    assert main(["export", "network", str(TOY), "--stages", "1", "--out", str(tmp_path)]) == 0
    net = load_net("jsc-toy")
    name = network_module_name(net, "adder_tree", (1, 1, 1))
    assert f"{name}.v" in capsys.readouterr().out
    manifest = read_manifest(tmp_path)
    entry = manifest.modules[name]
    assert entry.kind == "network" and entry.latency == 3
    assert entry.initiation_interval == 1
    assert sorted(p.name for p in entry.ports) == CONTRACT
    assert [ly["name"] for ly in entry.params["layers"]] == ["fc1", "fc2", "fc3"]
    assert entry.vectors == f"{name}.vectors.json" and entry.spec == f"{name}.spec.json"
    assert set(manifest.tools) >= {"amaranth"}
    assert QuantisedNetwork.from_json((tmp_path / entry.spec).read_text()) == net
    vec = json.loads((tmp_path / entry.vectors).read_text())
    inputs = json.loads((SPECS / "jsc-toy_relu_8b.inputs.json").read_text())
    assert vec["codes"] == inputs["codes"] and vec["labels"] == inputs["labels"]
    expected = np.asarray(integer_forward(net, inputs["codes"]))
    assert vec["expected"] == expected.tolist()
    assert vec["predicted"] == np.argmax(expected, axis=1).tolist()
    acc = float(np.mean(np.argmax(expected, axis=1) == np.asarray(inputs["labels"])))
    assert vec["reference_accuracy"] == acc > 0.8


def test_cli_layer_alone(tmp_path: Path) -> None:
    args = ["export", "network", str(TOY), "--layer", "fc3", "--impl", "mul"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    mod = export_network(load_net("jsc-toy"), impl="mul", layer="fc3")
    assert (tmp_path / f"{mod.name}.v").read_text() == mod.verilog
    entry = read_manifest(tmp_path).modules[mod.name]
    assert entry.kind == "linear_layer" and entry.params["out_features"] == 10


def _bad_spec(tmp_path: Path, edit) -> str:
    d = json.loads(TOY.read_text())
    edit(d)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    return str(path)


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda t: [str(TOY), "--layer", "fc9"], "--layer must be one of fc1|fc2|fc3, got 'fc9'"),
        (lambda t: [str(TOY), "--stages", "1,2"], "--stages must be"),
        (lambda t: [str(TOY), "--stages", "x"], "--stages must be an int in [0, 16]"),
        (lambda t: [str(TOY), "--impl", "dsp"], "--impl must be one of"),
        (lambda t: [str(t / "none.json")], "cannot read"),
        (lambda t: [str(TOY), "--inputs", str(t / "none.json")], "--inputs"),
        (lambda t: [str(TOY), "--inputs", str(TOY)], "missing key 'dataset'"),
        (lambda t: [_bad_spec(t, lambda d: d["layers"][0].pop("weight"))], "weight"),
        (lambda t: [_bad_spec(t, lambda d: d["layers"][1]["fmt"].update(width=0))], "width"),
        (lambda t: [_bad_spec(t, lambda d: d.update(num_classes=3))], "num_classes"),
    ],
)
def test_cli_errors_one_line_nothing_written(tmp_path: Path, capsys, make_args, message) -> None:
    out = tmp_path / "out"
    code = main(["export", "network", *make_args(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("python -m hdl: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert not out.exists()


def test_cli_out_is_a_file(tmp_path: Path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("keep")
    assert main(["export", "network", str(TOY), "--out", str(f)]) == 2
    assert "--out must be a directory" in capsys.readouterr().err
    assert f.read_text() == "keep"


def test_cli_inputs_of_the_wrong_network(tmp_path: Path, capsys) -> None:
    inputs = json.loads((SPECS / "jsc-toy_relu_8b.inputs.json").read_text())
    inputs["codes"][3] = inputs["codes"][3][:-1]
    bad = tmp_path / "in.json"
    bad.write_text(json.dumps(inputs))
    out = tmp_path / "out"
    assert main(["export", "network", str(TOY), "--inputs", str(bad), "--out", str(out)]) == 2
    assert "codes[3] must be 16 ints" in capsys.readouterr().err
    assert not out.exists()


def test_export_path_is_torch_free() -> None:
    """``nox -s export`` installs no torch: hdl.canonical and the CLI must not need it."""
    code = (
        "import sys, hdl.canonical, hdl.cli; "
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'models', 'search'}); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_argmax_sits_above_the_logits(tmp_path: Path) -> None:
    args = ["export", "network", str(TOY), "--argmax", "--out", str(tmp_path)]
    assert main(args) == 0
    net = load_net("jsc-toy")
    name = network_module_name(net, "adder_tree", (0,), argmax=True)
    assert name.endswith("_p0_am")
    text = (tmp_path / f"{name}.v").read_text()
    assert header(text, name) == CONTRACT
    assert f"output [{10 * 8 + 4 - 1}:0] o__payload;" in text  # 10 logits + a 4-bit index
    entry = read_manifest(tmp_path).modules[name]
    assert entry.params["argmax"] is True
    assert json.loads((tmp_path / f"{name}.vectors.json").read_text())["argmax"] is True


def test_leading_elementwise_group_exports(tmp_path: Path) -> None:
    """A ReLU before the first Linear becomes its own (combinational) module in the file."""
    from qspec.network import ReLUSpec
    from tests.test_verilator_lint import lint

    net = load_net("jsc-toy")
    net = dataclasses.replace(net, layers=(ReLUSpec(net.input_fmt), *net.layers))
    mod = export_network(net, stages=[0, 1, 1, 1])
    first = mod.layer_modules[0]
    assert first.kind == "elementwise_layer" and first.name.startswith("elementwise_n16_")
    assert re.search(rf"^\s*{first.name} pre \(", mod.verilog, re.M)
    path = tmp_path / f"{mod.name}.v"
    path.write_text(mod.verilog)
    result = lint(path, mod.name)
    assert result.returncode == 0, result.stderr[-3000:]
