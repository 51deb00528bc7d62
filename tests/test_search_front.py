"""``python -m search front``: the front is chosen on val accuracy and shows test accuracy;
several studies on one plot; ``--reference`` overlays; bad inputs write nothing.  Also the
reports' val/test accuracy columns and ``search verify --json``'s fields."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from search.cli import main
from search.config import loads_config
from search.front import Point, pareto, read_study
from search.hardware import HardwareParams
from tests.conftest import ROOT, csv_rows

REFERENCE = ROOT / "bench" / "reference_fronts.csv"
HEAD = "number,state,lut_eq,val_accuracy,test_accuracy,accuracy,violation\n"


def _dir(tmp: Path, name: str, rows: str, head: str = HEAD) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "trials.csv").write_text(head + rows)
    return d


ROWS = (
    "0,COMPLETE,100,0.80,0.70,0.80,\n"
    "1,COMPLETE,200,0.90,0.60,0.90,\n"  # on the front by val, although its test is worse
    "2,COMPLETE,150,0.79,0.95,0.79,\n"  # the best test, off the front by val: never chosen
    "3,PRUNED,50,,,,\n"
    "4,COMPLETE,60,0.99,0.99,0.99,0.5\n"  # infeasible
    "5,FAIL,40,,,,\n"
    "6,COMPLETE,300,0.90,0.91,0.90,\n"  # dominated (same val, more LUTs)
    "7,COMPLETE,400,0.95,0.94,0.95,0\n"
)


def test_front_is_chosen_on_val_and_reports_test(tmp_path, capsys):
    d = _dir(tmp_path, "s1", ROWS)
    assert main(["front", str(d)]) == 0
    rows = csv_rows(d / "front.csv")
    assert [r["trial"] for r in rows] == ["0", "1", "7"]
    assert [float(r["test_accuracy"]) for r in rows] == [0.70, 0.60, 0.94]
    assert rows[0].keys() == {"study", "trial", "lut_eq", "val_accuracy", "test_accuracy"}
    assert (d / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "s1: 3 front points of 5 feasible trials" in capsys.readouterr().out


def test_several_studies_and_the_reference_on_one_plot(tmp_path):
    a = _dir(tmp_path, "a", ROWS)
    b = _dir(tmp_path, "b", "0,COMPLETE,1800,0.85,0.84,0.85,\n1,COMPLETE,900,0.7,0.7,0.7,\n")
    png, table = tmp_path / "f.png", tmp_path / "f.csv"
    argv = ["front", str(a), str(b), "--out", str(png), "--csv", str(table)]
    assert main([*argv, "--reference", str(REFERENCE)]) == 0
    rows = csv_rows(table)
    assert {r["study"] for r in rows} == {"a", "b"} and len(rows) == 5
    assert png.stat().st_size > 10_000
    assert not (a / "front.png").exists()
    (tmp_path / "x").mkdir()
    c = _dir(tmp_path / "x", "a", ROWS)  # another study called a: labelled by its parent too
    assert main(["front", str(a), str(c), "--out", str(png), "--csv", str(table)]) == 0
    assert {r["study"] for r in csv_rows(table)} == {f"{tmp_path.name}/a", "x/a"}


def test_the_committed_reference_holds_the_hgq2_points():
    with REFERENCE.open() as f:
        rows = list(csv.DictReader(f))
    pts = {(r["benchmark"], float(r["accuracy"]), int(r["lut_eq"])) for r in rows}
    assert ("jsc-toy", 0.808, 1800) in pts and ("jsc-s", 0.931, 26082) in pts and len(pts) == 6


def test_pareto_keeps_only_undominated_points():
    pts = [Point("s", i, lut, val, None) for i, (lut, val) in
           enumerate([(1, 0.5), (2, 0.5), (2, 0.7), (3, 0.6), (4, 0.9), (4, 0.8)])]  # fmt: skip
    assert [p.trial for p in pareto(pts)] == [0, 2, 4]


def test_an_earlier_versions_study_falls_back_to_accuracy_with_a_warning(tmp_path, capsys):
    d = _dir(tmp_path, "old", "0,COMPLETE,100,0.8,\n", head="number,state,lut_eq,accuracy,x\n")
    assert read_study(d).val_column == "accuracy"
    assert main(["front", str(d)]) == 0
    assert "no val_accuracy column" in capsys.readouterr().err


@pytest.mark.parametrize(
    "make, extra, message",
    [
        (lambda t: t / "missing", [], "is not a directory"),
        (lambda t: (t / "empty").mkdir() or t / "empty", [], "is not a study's results directory"),
        (lambda t: _dir(t, "nolut", "0,COMPLETE,0.9\n", head="number,state,accuracy\n"), [],
         "needs the columns lut_eq and val_accuracy"),
        (lambda t: _dir(t, "ok", ROWS), ["--reference", "nope.csv"], "is not a file"),
        (lambda t: _dir(t, "ok", ROWS), ["--reference", "BAD"], "needs the columns"),
        (lambda t: _dir(t, "ok", ROWS), ["--reference", "BADVAL"], "line 2: accuracy in"),
        (lambda t: _dir(t, "ok", ROWS), ["--out", "DIR"], "--out: cannot write"),
        (lambda t: _dir(t, "ok", ROWS), ["--csv", "nodir/x.csv"], "--csv 'nodir/x.csv'"),
    ],
)  # fmt: skip
def test_bad_inputs_are_one_line_exit_2_and_write_nothing(
    tmp_path, monkeypatch, capsys, make, extra, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "BAD").write_text("a,b\n1,2\n")
    (tmp_path / "BADVAL").write_text("source,benchmark,accuracy,lut_eq\nx,y,1.5,10\n")
    (tmp_path / "DIR").mkdir()
    d = make(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    assert main(["front", str(d), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m search: error: ") and message in err[0]
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written


# --- the reports a real study writes ---------------------------------------------------------

CFG = """
[model]
name = "jsc-tiny"
[space.default]
weight_width = [2, 3, 4]
act_width = [8]
[strategy]
name = "brute_force"
[storage]
study = "fr"
[metrics.accuracy]
[metrics.lut_eq]
scale = 0.5
[training]
epochs = 2
batch_size = 512
"""


def fake_hardware(net, hw: HardwareParams) -> dict[str, float]:
    (fc1,) = net.linear_layers
    return {"lut_eq": 100.0 * fc1.weight_fmt.width, "latency": 1.0}


def test_a_studys_reports_carry_val_and_test_accuracy_and_feed_front(tmp_path, monkeypatch):
    from models.train import accuracy_of_spec
    from qspec.network import QuantisedNetwork
    from search.run import run_study
    from search.trial import context_of

    monkeypatch.setenv("HWFIRST_CACHE_DIR", str(tmp_path / "cache"))
    cfg = loads_config(CFG, name="fr")
    res = run_study(cfg, out_dir=tmp_path, hardware=fake_hardware, progress=False)
    rows = csv_rows(res.reports.trials_csv)
    assert len(rows) == 3
    for r in rows:  # model.split is val: accuracy is the val figure that chose the epoch
        assert r["val_accuracy"] == r["accuracy"] == r["qat_val_accuracy"] and r["test_accuracy"]
        assert json.loads(r["training"])["epochs"] == 2 and r["qat_epoch"] != ""
    best = json.loads(res.reports.best_json.read_text())["best"][0]
    spec = QuantisedNetwork.from_json(Path(best["spec"]).read_text())
    test = context_of(cfg).dataset.test
    assert best["metrics"]["test_accuracy"] == accuracy_of_spec(spec, test)
    assert best["training"]["batch_size"] == 512 and "qat_epoch" in best
    assert main(["front", str(res.out_dir)]) == 0
    front = csv_rows(res.out_dir / "front.csv")
    assert front and {r["trial"] for r in front} <= {r["number"] for r in rows}


# --- search verify --json ----------------------------------------------------------------------


def test_verify_json_lists_each_simulated_design(tmp_path, monkeypatch, capsys):
    """``verify --json``: one JSON object on stdout with trial, hw/ref accuracy and
    mismatches per design (the simulator replaced: its fields come from VerifyResult)."""
    import hdl.rtlsim
    from hdl.rtlsim.report import VerifyResult
    from search.run import run_study

    cfg = loads_config(CFG.replace("[training]\nepochs = 2", "[training]\nepochs = 0"))
    res = run_study(cfg, out_dir=tmp_path, hardware=fake_hardware, progress=False)
    fields = {f: None for f in VerifyResult.__dataclass_fields__}

    seen = []

    def fake_verify(path, **kw):
        seen.append(kw.get("netlist"))
        return VerifyResult(**{**fields, "design": str(path), "samples": 10, "random_codes": 0,
                               "stalls": True, "seed": 1, "mismatches": 0, "class_mismatches": 0,
                               "hw_accuracy": 0.9, "ref_accuracy": 0.9, "latencies": (),
                               "errors": (), "tests_run": 1, "tests_failed": 0,
                               "build_seconds": 0.0, "run_seconds": 0.0, "notes": ()})  # fmt: skip

    monkeypatch.setattr(hdl.rtlsim, "verify_network", fake_verify)
    monkeypatch.setattr(hdl.rtlsim, "cocotb_problem", lambda: None)
    assert main(["verify", "--study-dir", str(res.out_dir), "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)  # nothing but the JSON on stdout
    assert doc["passed"] and doc["results"]
    for r in doc["results"]:
        assert {"trial", "hw_accuracy", "ref_accuracy", "mismatches"} <= r.keys()
        assert r["trial"] in res.reports.best and r["mismatches"] == 0
    assert seen and set(seen) == {None}  # the RTL
    seen.clear()
    assert main(["verify", "--study-dir", str(res.out_dir), "--json", "--netlist", "ice40"]) == 0
    assert seen and set(seen) == {"ice40"}  # the mapped netlist, for every design
    capsys.readouterr()
    assert main(["verify", "--study-dir", str(res.out_dir), "--netlist", "xc7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--netlist" in err[0] and "ice40" in err[0]
