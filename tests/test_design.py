"""The exported-design bundle (``hdl.design``) and the vectors files (``qspec.vectors``): one
layout whoever writes it, old directories still load, garbage gives one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hdl.cli import main
from hdl.design import load_design, read_manifest
from qspec.network import QuantisedNetwork
from qspec.vectors import check_inputs, inputs_path, read_inputs
from search.hardware import HardwareParams, export_verilog

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "verilog_out" / "specs"
TINY8 = SPECS / "jsc-tiny_relu_8b.json"
INPUTS = SPECS / "jsc-tiny_relu_8b.inputs.json"


def files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if not p.name.startswith(".")}


@pytest.fixture(scope="module")
def net() -> QuantisedNetwork:
    return QuantisedNetwork.from_json(TINY8.read_text())


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """``hdl export network`` of a spec with no inputs file beside it (so no vectors)."""
    tmp = tmp_path_factory.mktemp("cli")
    spec = tmp / "tiny.json"
    shutil.copy(TINY8, spec)
    assert main(["export", "network", str(spec), "--stages", "1", "--out", str(tmp / "exp")]) == 0
    return tmp / "exp"


def test_cli_and_search_write_the_same_layout(exported: Path, net, tmp_path: Path) -> None:
    v = export_verilog(net, HardwareParams(impl="adder_tree", stages=1), tmp_path / "trial_3")
    top = v.stem
    assert sorted(files(exported)) == sorted([f"{top}.v", f"{top}.spec.json", "manifest.json"])
    assert files(exported) == files(v.parent)  # byte for byte, manifest included
    a, b = load_design(exported), load_design(tmp_path)  # a search best/ holding one trial
    assert (a.top, a.latency, a.initiation_interval, a.argmax) == (top, 1, 1, False)
    assert b.verilog_path == v and a.net == b.net == net
    assert (a.verilog, a.params, a.notes, a.vectors) == (b.verilog, b.params, b.notes, None)
    entry = read_manifest(exported).modules[top]
    assert (entry.file, entry.spec, entry.vectors) == (f"{top}.v", f"{top}.spec.json", None)


def test_vectors_beside_the_design(tmp_path: Path, net) -> None:
    assert main(["export", "network", str(TINY8), "--out", str(tmp_path)]) == 0
    d = load_design(tmp_path)
    assert d.vectors == tmp_path / f"{d.top}.vectors.json"
    want = json.loads(INPUTS.read_text())
    got = d.read_vectors()
    assert (got.codes, got.labels, got.dataset) == (want["codes"], want["labels"], "digits16")


def test_old_search_layout_still_loads(exported: Path, tmp_path: Path) -> None:
    """A trial directory written before the one layout: ``spec.json``, and a manifest entry
    naming a ``<top>.spec.json`` that is not there."""
    (v,) = exported.glob("*.v")
    shutil.copy(v, tmp_path / v.name)
    shutil.copy(exported / "manifest.json", tmp_path / "manifest.json")
    shutil.copy(TINY8, tmp_path / "spec.json")
    assert read_manifest(tmp_path).modules[v.stem].spec == f"{v.stem}.spec.json"
    d = load_design(tmp_path)
    assert d.spec_path == tmp_path / "spec.json" and d.latency == 1
    assert d.net == load_design(exported).net


@pytest.mark.parametrize(
    "text", ["{not json", "[1, 2]", '{"modules": 3}', '{"modules": {"a": {"file": 1}}}']
)
def test_garbage_manifest_is_one_line_naming_the_file(exported, tmp_path, text) -> None:
    (v,) = exported.glob("*.v")
    shutil.copy(v, tmp_path / v.name)
    shutil.copy(TINY8, tmp_path / f"{v.stem}.spec.json")
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(ValueError) as e:
        load_design(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "manifest.json") in msg, msg


def test_nothing_recognisable_names_what_to_regenerate(exported, tmp_path) -> None:
    (v,) = exported.glob("*.v")
    shutil.copy(v, tmp_path / v.name)
    with pytest.raises(ValueError, match=r"no spec JSON beside it .*python -m hdl export network"):
        load_design(tmp_path)


def test_inputs_path_rule() -> None:
    assert inputs_path("a/x.json") == Path("a/x.inputs.json")
    assert inputs_path(Path("a/x.spec")) == Path("a/x.spec.inputs.json")


def test_inputs_file_and_dict_checked_alike(net, tmp_path: Path) -> None:
    s = read_inputs(INPUTS, net, "--inputs")
    assert s.to_json() == INPUTS.read_text()  # what `models spec` wrote, byte for byte
    doc = json.loads(INPUTS.read_text())
    assert check_inputs(doc, net) == s
    doc["codes"][2] = doc["codes"][2][:-1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValueError) as from_file:
        read_inputs(bad, net, "--inputs")
    with pytest.raises(ValueError) as from_dict:
        check_inputs(doc, net, "inputs")
    n = net.in_features
    assert (
        str(from_file.value) == f"--inputs {str(bad)!r}: codes[2] must be {n} ints in [-128, 127]"
    )
    assert str(from_dict.value) == f"inputs: codes[2] must be {n} ints in [-128, 127]"


def test_synth_reads_timing_through_the_bundle(exported: Path, tmp_path: Path) -> None:
    from hdl.synth.flow import manifest_timing

    (v,) = exported.glob("*.v")
    assert manifest_timing(v, v.stem) == (1, 1)
    assert manifest_timing(v, "other") == (None, None)
    assert manifest_timing(tmp_path / "x.v", "x") == (None, None)  # no manifest
    (tmp_path / "manifest.json").write_text("{not json")
    assert manifest_timing(tmp_path / "x.v", "x") == (None, None)  # as before: no timing


def test_bundle_imports_without_amaranth() -> None:
    """``hdl.synth`` and the simulators read designs where Amaranth is not installed."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['amaranth'] = None; import hdl.design, hdl.synth.flow, "
        "qspec.vectors"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)
