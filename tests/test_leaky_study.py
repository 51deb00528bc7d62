"""The LeakyReLU study (studies.leaky): the --quick path end to end, checked independently."""

from __future__ import annotations

import dataclasses
import json
import math
import types

import pytest

import hdl.synth.network as synth_network
from studies.leaky import run as study
from studies.leaky.cli import main
from studies.leaky.config import HW_KEYS, PAGE_NAME, VARIANTS, StudyConfig
from studies.leaky.stats import t_interval


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    docs, js, root = tmp / "docs", tmp / "r.json", tmp / "study"
    argv = ["--quick", "--models", "jsc-toy", "--seeds", "2", "--bits", "4", "--epochs", "3",
            "--qat-epochs", "2", "--no-hw", "--no-progress", "--study-dir", str(root),
            "--docs", str(docs), "--json", str(js)]  # fmt: skip
    assert main(argv) == 0
    return json.loads(js.read_text()), (docs / PAGE_NAME).read_text(), docs, root


def test_structure(quick):
    result, page, docs, _ = quick
    assert len(result["cells"]) == 2 * len(VARIANTS)  # 2 seeds x 1 model x 1 width
    assert {(c["variant"], c["seed"]) for c in result["cells"]} == {
        (v, s) for v in VARIANTS for s in (0, 1)
    }
    assert all(0 <= c["test_acc"] <= 1 for c in result["cells"])
    assert [r["variant"] for r in result["summary"]] == list(VARIANTS)
    assert [(d["variant"], d["ref"]) for d in result["deltas"]] == [
        ("shift_ptq", "mult"), ("shift_trained", "mult"), ("shift_qat", "mult"),
        ("shift_trained", "shift_ptq"),
    ]  # fmt: skip
    assert result["verdict"]["accuracy_claim"] in (
        "supported", "not supported", "premise not observed", "contradicted"
    )  # fmt: skip
    # the shift variants implement 2^-2; mult rounds 0.3 to a 4-bit code (>= 3 fraction bits)
    slopes = {c["variant"]: c["slope"] for c in result["cells"]}
    assert slopes["shift_ptq"] == slopes["shift_trained"] == slopes["shift_qat"] == 0.25
    assert abs(slopes["mult"] - 0.3) <= 2**-4 and slopes["relu"] is None
    assert result["hardware_status"].startswith("pending") and result["hardware"] == []
    assert "hardware: pending" in page and "LUT-eq" in page
    for heading in ("## Results", "## Accuracy cost", "## Verdict on the seed's claim"):
        assert heading in page
    assert (docs / "leaky_study_accuracy.png").stat().st_size > 1000
    assert "](leaky_study_accuracy.png)" in page


def test_cell_matches_independent_recomputation(quick):
    """Rebuild one cell from the saved checkpoint with the models API alone."""
    from models.data import load_dataset
    from models.fold import fold_batchnorm
    from models.metrics import compute_metrics
    from models.qconfig import QuantConfig
    from models.train import load_float

    result, _, _, root = quick
    (ckpt,) = root.glob("*/jsc-toy_digits16_leaky_relu_s0.3_seed1.pt")
    ds = load_dataset("digits16")
    model, meta = load_float("jsc-toy", "digits16", "leaky_relu", ckpt.parent, slope=0.3, seed=1)
    assert meta["train"]["epochs"] == 3
    folded = fold_batchnorm(model)
    cells = {(c["variant"], c["seed"]): c for c in result["cells"]}
    for variant, impl in (("shift_ptq", "shift"), ("mult", "mult")):
        # slope 0.3 with shift: models.quant rounds it to 2^-2 itself
        qc = QuantConfig.from_dict({"default": {"width": 4, "leaky_impl": impl, "slope": 0.3}})
        m = compute_metrics(folded, qc, ds, split="test", per_layer_accuracy=False)
        assert cells[variant, 1]["test_acc"] == m.accuracy
        assert cells[variant, 1]["float_acc"] == m.float_accuracy
    d = next(x for x in result["deltas"] if x["variant"] == "shift_ptq")
    assert d["ref"] == "mult"
    assert d["diffs"] == [
        cells["shift_ptq", s]["test_acc"] - cells["mult", s]["test_acc"] for s in (0, 1)
    ]


def test_render_only_rebuilds_the_same_page(quick, tmp_path):
    result, page, docs, _ = quick
    js = tmp_path / "r.json"
    js.write_text(json.dumps(result))
    assert main(["--render-only", "--json", str(js), "--docs", str(tmp_path)]) == 0
    assert (tmp_path / PAGE_NAME).read_text() == page
    assert json.loads(js.read_text()) == result


def test_t_interval():
    mean, lo, hi = t_interval([0.0, 0.1, 0.2])  # sd 0.1, n 3, t(0.975, 2) = 4.302653
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert mean == pytest.approx(0.1)
    assert (lo, hi) == pytest.approx((0.1 - half, 0.1 + half), abs=1e-6)
    assert math.isnan(t_interval([0.3])[1])


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--bits", "1"], "--bits"),
        (["--models", "jsc-tiny"], "--models"),
        (["--seeds", "2", "--hw-seeds", "3"], "--hw-seeds"),
        (["--fmax-models", "jsc-xl"], "--fmax-models"),
    ],
)
def test_cli_errors_are_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_hardware_rows_page_and_failures(quick, tmp_path, monkeypatch):
    """Synthesis stubbed: the hardware table, the area plot, and a failed network's row."""
    _, _, _, root = quick
    calls = []
    js = tmp_path / "r.json"

    def fake(spec, target, *, impl, stages, fmax, timeout):
        calls.append(spec)
        assert (target, impl, stages, timeout) == ("ecp5", "adder_tree", 1, 3600.0)
        assert fmax  # jsc-toy is placed for Fmax by default
        if len(calls) == 2:  # results so far are on disk, the rest marked as not synthesised
            rows = json.loads(js.read_text())["hardware"]
            assert [h.get("error") for h in rows] == [None] + [study.STOPPED] * 4
        if len(calls) == 3:  # the third network (relu, by the synthesis order) fails
            raise RuntimeError("yosys crashed\nsecond line")
        leaky = study.leaky_slopes(spec)
        mult = bool(leaky) and leaky[0] != 0.25
        return types.SimpleNamespace(lut_eq=100 + 40 * mult, lut4=1, carries=1, ffs=1,
                                     dsps=int(mult), latency=3, fmax_mhz=50.0 - mult)  # fmt: skip

    monkeypatch.setattr(synth_network, "synthesise_network_total", fake)
    argv = ["--quick", "--models", "jsc-toy", "--seeds", "2", "--bits", "4", "--epochs", "3",
            "--qat-epochs", "2", "--no-progress", "--study-dir", str(root), "--docs",
            str(tmp_path), "--json", str(js)]  # fmt: skip
    assert main(argv) == 0
    r = json.loads(js.read_text())
    page = (tmp_path / PAGE_NAME).read_text()
    assert r["hardware_status"] == "ok" and len(calls) == len(VARIANTS)  # hw_seeds 1
    assert [h["variant"] for h in r["hardware"]][:3] == ["mult", "shift_ptq", "relu"]
    (failed,) = [h for h in r["hardware"] if "error" in h]
    assert failed["variant"] == "relu" and failed["lut_eq"] is None
    assert "RuntimeError: yosys crashed" in page and "second line" not in page
    (d,) = r["hw_deltas"]
    assert d["delta"]["lut_eq"] == -40 and d["delta"]["dsps"] == -1
    assert r["verdict"]["hw_shift_never_larger"] is True
    assert (tmp_path / "leaky_study_area.png").is_file() and "hardware: pending" not in page


def test_only_fmax_models_are_placed(monkeypatch):
    """jsc-s layers take 10-30 min each to place: Fmax only for --fmax-models."""
    seen = {}

    def fake(spec, target, *, fmax, **kw):
        seen[spec] = fmax
        return types.SimpleNamespace(**dict.fromkeys(HW_KEYS, 1))

    monkeypatch.setattr(synth_network, "synthesise_network_total", fake)
    cfg = StudyConfig(models=("jsc-toy", "jsc-s"), bits=(4,))
    specs = {(m, v, 4, 0): f"{m}/{v}" for m in cfg.models for v in study.HW_ORDER}
    rows, status = study.run_hardware(cfg, specs, progress=False)
    assert status == "ok" and len(rows) == len(specs)
    assert seen == {s: s.startswith("jsc-toy/") for s in specs.values()}
    both = dataclasses.replace(cfg, fmax_models=("jsc-toy", "jsc-s"))
    seen.clear()
    study.run_hardware(both, specs, progress=False)
    assert all(seen.values()) and len(seen) == len(specs)


def test_shipped_page_rerenders_identically(tmp_path):
    """docs/leaky_study.md is what --render-only makes of bench/results/leaky_study.json."""
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    js = tmp_path / "leaky_study.json"
    js.write_text((repo / "bench" / "results" / "leaky_study.json").read_text())
    assert main(["--render-only", "--json", str(js), "--docs", str(tmp_path)]) == 0
    assert (tmp_path / PAGE_NAME).read_text() == (repo / "docs" / PAGE_NAME).read_text()


def test_python_m_search_study_forwards(quick, tmp_path, capsys):
    """``python -m search study`` is the study's CLI: same options, output and errors."""
    from search.cli import main as search_main

    result, page, _, _ = quick
    js = tmp_path / "r.json"
    js.write_text(json.dumps(result))
    assert search_main(["study", "--render-only", "--json", str(js), "--docs", str(tmp_path)]) == 0
    assert (tmp_path / PAGE_NAME).read_text() == page
    assert capsys.readouterr().out.startswith(f"wrote {tmp_path / PAGE_NAME} and {js};")
    assert search_main(["study", "--bits", "1"]) == 2
    err = capsys.readouterr().err
    assert err == "python -m search: error: --bits must be integers in [2, 16], got 1\n"
