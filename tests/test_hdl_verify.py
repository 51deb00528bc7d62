"""``python -m hdl verify network`` / ``python -m search verify`` / ``hdl.rtlsim.verify_network``.

The command simulates exported Verilog (Verilator or Icarus through cocotb) and
compares it with the integer reference.  Here the reference accuracy is computed
independently (``qspec.integer_forward`` on the same test samples), a design
with one weight edited in its Verilog must exit 1 with mismatches, and bad input
must exit 2 with one line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hdl.cli
from hdl.rtlsim import runner, verify_network
from qspec.integer_forward import integer_forward
from qspec.network import QuantisedNetwork
from tests import sim as simlib

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "verilog_out" / "specs"
TINY8 = SPECS / "jsc-tiny_relu_8b.json"
SAMPLES, RANDOM = 200, 100

pytestmark = pytest.mark.cocotb


def run_cli(module: str, *args: str | Path, tmp: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS``; ``tmp``: its temporary directory (a failed run keeps its
    work directory there, with the log)."""
    env = os.environ | {runner.BUILD_ENV: str(simlib.cache_dir())}
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=900,
    )


def reference_accuracy(spec: Path, inputs: Path, n: int) -> float:
    """The integer reference's accuracy on the first ``n`` test samples, computed here."""
    net = QuantisedNetwork.from_json(spec.read_text())
    data = json.loads(inputs.read_text())
    logits = np.asarray(integer_forward(net, data["codes"][:n]))
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(data["labels"][:n])))


@pytest.fixture(scope="module")
def tiny4(tmp_path_factory) -> Path:
    """jsc-tiny at 4 bits, as a user makes it: ``python -m models spec``."""
    out = tmp_path_factory.mktemp("spec") / "jsc-tiny_4b.json"
    p = run_cli("models", "spec", "jsc-tiny", "--bits", "4", "--out", out)
    assert p.returncode == 0, p.stderr
    assert out.with_name("jsc-tiny_4b.inputs.json").is_file()
    return out


# --- bit-exact designs -------------------------------------------------------------


@pytest.mark.parametrize("sim", simlib.sim_params())
def test_spec_is_bit_exact_and_accuracy_matches_the_reference(sim: str, tiny4: Path) -> None:
    simlib.require(sim)
    p = run_cli("hdl", "verify", "network", tiny4, "--sim", sim, "--stages", "1",
                "--samples", SAMPLES, "--random", RANDOM, "--json")  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout)  # one JSON object, nothing else on stdout
    want = reference_accuracy(tiny4, tiny4.with_name("jsc-tiny_4b.inputs.json"), SAMPLES)
    assert r["passed"] is True and r["mismatches"] == 0 and r["errors"] == []
    assert (r["sim"], r["samples"], r["random_codes"], r["beats"]) == (sim, 200, 100, 300)
    assert r["hw_accuracy"] == r["ref_accuracy"] == want > 0.5
    assert r["latency"] == r["expected_latency"] == 1 and r["stages"] == [1]
    assert r["tests_run"] == 2 and r["tests_failed"] == 0 and r["stalls"] is True


@pytest.mark.parametrize("sim", simlib.sim_params())
def test_exported_directory_and_search_layout(sim: str, tmp_path: Path) -> None:
    """What `hdl export network` writes (vectors beside it), and a search `best/trial_N/`
    (spec.json, no vectors: --inputs), both verified as they are on disk."""
    simlib.require(sim)
    exp = tmp_path / "exp"
    p = run_cli("hdl", "export", "network", TINY8, "--out", exp)
    assert p.returncode == 0, p.stderr
    p = run_cli("hdl", "verify", "network", exp, "--sim", sim, "--samples", SAMPLES,
                "--random", RANDOM, "--no-stalls")  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in p.stdout.splitlines())
    want = reference_accuracy(TINY8, SPECS / "jsc-tiny_relu_8b.inputs.json", SAMPLES)
    assert lines["mismatches"] == "0 of 300 beats vs the integer reference"
    assert lines["hw accuracy"] == f"{want:.4f} (test split)"
    assert lines["ref accuracy"] == f"{want:.4f}"
    assert lines["latency"] == "1 cycle at full rate (recorded 1)"
    assert lines["result"] == "bit-exact" and "full rate, no stalls" in lines["beats"]
    assert lines["simulator"].lower().startswith(sim)

    trial = tmp_path / "results" / "best" / "trial_7"
    trial.mkdir(parents=True)
    (v,) = exp.glob("*.v")
    shutil.copy(v, trial / v.name)
    shutil.copy(exp / "manifest.json", trial / "manifest.json")
    shutil.copy(TINY8, trial / "spec.json")
    p = run_cli("hdl", "verify", "network", trial.parent, "--sim", sim)
    assert p.returncode == 2 and "--inputs" in p.stderr and len(p.stderr.splitlines()) == 1
    inputs = SPECS / "jsc-tiny_relu_8b.inputs.json"
    p = run_cli("hdl", "verify", "network", trial.parent, "--sim", sim, "--json",
                "--inputs", inputs, "--samples", SAMPLES)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["top"] == v.stem and r["mismatches"] == 0 and r["hw_accuracy"] == want


# --- the check can fail ------------------------------------------------------------


def break_one_weight(verilog: str) -> str:
    """``impl="mul"`` writes each weight as a constant factor: flip the first one's LSB."""
    m = re.search(r"\* \$signed\((\d+)'h([0-9a-f]+)\)", verilog)
    assert m is not None, "no constant multiplier in the Verilog"
    width, value = int(m[1]), int(m[2], 16)
    new = f"* $signed({width}'h{(value ^ 1) & ((1 << width) - 1):x})"
    return verilog[: m.start()] + new + verilog[m.end() :]


@pytest.mark.parametrize("sim", simlib.sim_params())
def test_one_wrong_weight_in_the_verilog_exits_1(sim: str, tmp_path: Path) -> None:
    simlib.require(sim)
    p = run_cli("hdl", "export", "network", TINY8, "--impl", "mul", "--out", tmp_path)
    assert p.returncode == 0, p.stderr
    (v,) = tmp_path.glob("*.v")
    v.write_text(break_one_weight(v.read_text()))
    p = run_cli("hdl", "verify", "network", v, "--sim", sim, "--samples", SAMPLES,
                "--random", RANDOM, "--json", tmp=tmp_path)  # fmt: skip
    assert p.returncode == 1, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["passed"] is False and r["mismatches"] > 0 and r["tests_failed"] >= 1
    assert any("beats mismatch" in e for e in r["errors"])
    assert any("edited after export" in n for n in r["notes"])
    assert Path(r["log"]).is_file() and tmp_path in Path(r["log"]).parents  # kept for the user
    p = run_cli("hdl", "verify", "network", v, "--sim", sim, "--samples", 50, "--random", 0,
                tmp=tmp_path)  # fmt: skip
    assert p.returncode == 1 and "FAILED: not bit-exact" in p.stdout


# --- the Python API and `search verify` ---------------------------------------------


@pytest.mark.parametrize("sim", simlib.sim_params())
def test_api_on_a_network_object(sim: str, tmp_path: Path) -> None:
    simlib.require(sim)
    net = QuantisedNetwork.from_json(TINY8.read_text())
    inputs = json.loads((SPECS / "jsc-tiny_relu_8b.inputs.json").read_text())
    r = verify_network(net, sim=sim, inputs=inputs, samples=40, random_codes=20, stages=2,
                       build_dir=simlib.cache_dir(), work_dir=tmp_path)  # fmt: skip
    assert r.passed and r.beats == 60 and r.latency == r.expected_latency == 2
    want = reference_accuracy(TINY8, SPECS / "jsc-tiny_relu_8b.inputs.json", 40)
    assert r.hw_accuracy == r.ref_accuracy == want
    assert (tmp_path / "sim.log").is_file()  # a work_dir given is kept


@pytest.mark.parametrize("sim", simlib.sim_params())
def test_search_verify_runs_the_best_design(sim: str, tmp_path: Path) -> None:
    simlib.require(sim)
    config = tmp_path / "mystudy.toml"  # the study name is the file stem
    config.write_text((ROOT / "search" / "configs" / "smoke.toml").read_text())
    study = tmp_path / "results" / "mystudy"
    exp = study / "best" / "trial_3"
    p = run_cli("hdl", "export", "network", TINY8, "--out", exp)
    assert p.returncode == 0, p.stderr
    (v,) = exp.glob("*.v")
    for extra in exp.glob("*.json"):  # search writes spec.json and no vectors
        if extra.name != "manifest.json":
            extra.unlink()
    shutil.copy(TINY8, exp / "spec.json")
    best = {"study": "mystudy", "storage": None, "best": [{"trial": 3, "verilog": str(v)}]}
    (study / "best.json").write_text(json.dumps(best))
    p = run_cli("search", "verify", "--study-dir", study, "--sim", sim)
    assert p.returncode == 2 and "cannot open the study's storage" in p.stderr, p.stderr
    p = run_cli("search", "verify", "--config", config, "--out", tmp_path / "results",
                "--sim", sim, "--samples", 100, "--random", 50, "--json")  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert (doc["study"], doc["passed"], len(doc["results"])) == ("mystudy", True, 1)
    r = doc["results"][0]
    want = reference_accuracy(TINY8, SPECS / "jsc-tiny_relu_8b.inputs.json", 100)
    assert (r["trial"], r["mismatches"], r["beats"], r["dataset"]) == (3, 0, 150, "digits16")
    assert r["hw_accuracy"] == r["ref_accuracy"] == want  # the same test split as models spec

    # --study-dir alone: the config comes from the study's storage
    import optuna

    url = f"sqlite:///{study / 'study.db'}"
    optuna.create_study(study_name="mystudy", storage=url).set_user_attr(
        "config_source", config.read_text()
    )
    (study / "best.json").write_text(json.dumps(best | {"storage": url}))
    p = run_cli("search", "verify", "--study-dir", study, "--sim", sim, "--samples", 100,
                "--random", 0)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert "study mystudy, best trial 3:" in p.stdout
    assert re.search(r"mismatches\s+0 of 100 beats", p.stdout), p.stdout
    assert re.search(r"result\s+bit-exact", p.stdout), p.stdout
    p = run_cli("search", "verify", "--config", config, "--out", tmp_path / "results",
                "--trial", 4)  # fmt: skip
    assert (
        p.returncode == 2 and p.stderr.count("\n") == 1 and "--trial must be one of 3" in p.stderr
    )


def test_package_imports_neither_pytest_nor_torch_nor_cocotb() -> None:
    code = (
        "import sys, hdl.rtlsim, hdl.rtlsim.verify, hdl.rtlsim.runner, hdl.cli; "
        "mods = ('pytest', 'torch', 'cocotb', 'cocotb_tools'); "
        "print(sorted(m for m in mods if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# --- bad input: exit 2, one line --------------------------------------------------


def one_line_error(capsys, *argv: str | Path) -> str:
    assert hdl.cli.main([*map(str, argv)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_bad_input_exits_2_with_one_line(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    empty = tmp_path / "empty"
    empty.mkdir()
    two = tmp_path / "two"  # an export directory with two network tops
    two.mkdir()
    mods = {n: {"kind": "network", "file": f"{n}.v"} for n in "ab"}
    (two / "manifest.json").write_text(json.dumps({"modules": mods}))
    for n in "ab":
        (two / f"{n}.v").write_text("// not Verilog\n")
    cases = [
        ((tmp_path / "missing.json",), "no such file or directory"),
        ((bad,), "not valid JSON"),
        ((TINY8, "--sim", "modelsim"), "argument --sim: invalid choice: 'modelsim'"),
        ((TINY8, "--impl", "lut"), "--impl must be one of adder_tree|adder_tree_nosub|mul"),
        ((TINY8, "--samples", "-1"), "--samples must be an integer in [0, 10000000], got '-1'"),
        ((TINY8, "--stages", "a"), "--stages must be an int in [0, 16]"),
        ((TINY8, "--samples", "0", "--random", "0"), "nothing to simulate"),
        ((empty,), "no network Verilog here"),
        ((two,), "holds 2 network tops (a.v, b.v); name one .v file"),
        ((two / "a.v", "--impl", "mul"), "--impl is only for a spec JSON"),
        ((two / "a.v",), "no module a in it"),
        ((SPECS / "jsc-tiny_relu_8b.inputs.json",), "not a network spec"),
        ((TINY8, "--inputs", bad), "--inputs"),
    ]  # fmt: skip
    for args, message in cases:
        err = one_line_error(capsys, "verify", "network", *args)
        assert message in err, (args, err)


def test_missing_cocotb_or_simulator_exits_2(capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cocotb", None)  # find_spec: not installed
    err = one_line_error(capsys, "verify", "network", TINY8)
    assert err == "python -m hdl: error: cocotb is not installed: pip install 'hwfirst[sim]'\n"
    monkeypatch.undo()
    if runner.cocotb_problem() is not None:
        pytest.skip(runner.cocotb_problem())
    monkeypatch.setattr(
        runner,
        "simulator_problem",
        lambda s: "Verilator not usable: gone" if s == "verilator" else None,
    )
    err = one_line_error(capsys, "verify", "network", TINY8, "--sim", "verilator")
    assert err == (
        "python -m hdl: error: --sim verilator: Verilator not usable: gone; usable here: icarus\n"
    )
