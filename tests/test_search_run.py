"""run_study end to end: reports, failures recorded, constraints, Pareto mode, the report CLI,
and the shipped smoke config with real synthesis (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hdl.design import load_design
from search.cli import main
from search.config import load_config, loads_config
from search.hardware import HardwareError, HardwareParams
from search.run import run_study
from search.scoring import weighted_score
from tests.conftest import CONFIGS, csv_rows

CFG = """
[model]
name = "jsc-tiny"
[space.default]
weight_width = [2, 4]
act_width = [4, 8]
[strategy]
name = "brute_force"
[storage]
study = "e2e"
[metrics.accuracy]
min = 0.85
[metrics.lut_eq]
scale = 0.5
[metrics.latency]
scale = 0.1
"""


def fake_hardware(net, hw: HardwareParams) -> dict[str, float]:
    """A test stand-in for synthesis: LUTs grow with the weight width (never shipped)."""
    (fc1,) = net.linear_layers
    if hw.impl != "adder_tree":
        raise AssertionError(hw)
    return {"lut_eq": 100.0 * fc1.weight_fmt.width + fc1.out_fmt.width, "latency": 1.0 + hw.stages}


@pytest.fixture(scope="module")
def weighted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg = loads_config(CFG)
    result = run_study(cfg, out_dir=tmp, hardware=fake_hardware, progress=False)
    return cfg, result, tmp


def test_reports_are_written(weighted):
    _, result, tmp = weighted
    out = tmp / "e2e"
    assert result.reports.out_dir == out and (result.ran, result.total) == (4, 4)
    for name in ("pareto.png", "history.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = csv_rows(out / "trials.csv")
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"]
    assert [(r["fc1.weight_width"], r["fc1.act_width"]) for r in rows] == [
        ("2", "4"), ("2", "8"), ("4", "4"), ("4", "8"),
    ]  # fmt: skip
    assert [r["lut_eq"] for r in rows] == ["204.0", "208.0", "404.0", "408.0"]
    assert list(rows[0])[:5] == [
        "number",
        "state",
        "duration_s",
        "fc1.weight_width",
        "fc1.act_width",
    ]


def test_scores_follow_the_formula_and_best_is_feasible(weighted):
    cfg, result, tmp = weighted
    best = json.loads((tmp / "e2e" / "best.json").read_text())
    ref = best["reference_metrics"]
    assert ref["lut_eq"] == 808.0 and ref["latency"] == 1.0  # uniform 8 bits: 100*8 + 8
    rows = csv_rows(tmp / "e2e" / "trials.csv")
    feasible = []
    for r in rows:
        m = {k: float(r[k]) for k in ("accuracy", "lut_eq", "latency")}
        expected = m["accuracy"] / ref["accuracy"] - 0.5 * m["lut_eq"] / 808.0 - 0.1
        assert float(r["score"]) == pytest.approx(expected, abs=1e-12)
        assert weighted_score(m, ref, cfg.metrics) == pytest.approx(expected, abs=1e-12)
        violation = float(r["violation"])
        assert violation == pytest.approx(max(0.85 - m["accuracy"], 0.0), abs=1e-12)
        if violation == 0:
            feasible.append((float(r["score"]), int(r["number"])))
    (entry,) = best["best"]
    assert entry["trial"] == max(feasible)[1]
    assert entry["metrics"]["accuracy"] >= 0.85
    assert entry["config"]["layers"]["fc1"]["weight_width"] == entry["params"]["fc1.weight_width"]
    assert "module" in Path(entry["verilog"]).read_text()
    v = Path(entry["verilog"])
    assert Path(entry["spec"]) == v.with_suffix(".spec.json")  # the one design layout
    design = load_design(v.parent)
    assert design.verilog_path == v and design.spec_path == Path(entry["spec"])
    spec = json.loads(Path(entry["spec"]).read_text())
    assert spec["layers"][0]["weight_fmt"]["width"] == entry["params"]["fc1.weight_width"]
    fmt = spec["layers"][0]["weight_fmt"]
    assert entry["formats"]["fc1"]["weight"] == [fmt["width"], fmt["frac_width"]]


def test_report_command_rebuilds_from_storage(weighted, tmp_path, capsys):
    _, result, tmp = weighted
    db = Path(result.storage.removeprefix("sqlite:///"))
    assert main(["report", str(db), "--study", "e2e", "--out", str(tmp_path)]) == 0
    for name in ("trials.csv", "best.json"):
        a, b = ((d / "e2e" / name).read_text() for d in (tmp, tmp_path))
        assert a.replace(str(tmp), "OUT") == b.replace(str(tmp_path), "OUT").replace(
            str(tmp), "OUT"
        )
    assert "best of study e2e" in capsys.readouterr().out
    before = (tmp_path / "e2e" / "best.json").read_text()
    assert main(["report", str(db), "--study", "e2e", "--out", str(tmp_path), "--no-export"]) == 0
    assert (tmp_path / "e2e" / "best.json").read_text() == before  # earlier export kept
    assert main(["report", str(db), "--study", "nope", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"python -m search: error: --study 'nope' is not in {db}; allowed: e2e\n"
    )


def test_failed_synthesis_fails_the_trial_and_the_study_goes_on(tmp_path):
    def flaky(net, hw):
        if net.linear_layers[0].weight_fmt.width == 4:
            raise HardwareError("SynthTimeout: yosys timed out after 1 s")
        return fake_hardware(net, hw)

    result = run_study(loads_config(CFG), out_dir=tmp_path, hardware=flaky, progress=False)
    study = optuna.load_study(study_name="e2e", storage=result.storage)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 2 + [TrialState.FAIL] * 2
    assert study.trials[2].user_attrs["error"] == (
        "HardwareError: SynthTimeout: yosys timed out after 1 s"
    )
    rows = csv_rows(tmp_path / "e2e" / "trials.csv")
    assert rows[3]["error"] == "HardwareError: SynthTimeout: yosys timed out after 1 s"
    assert rows[3]["lut_eq"] == "" and rows[3]["score"] == ""


def test_pareto_mode_is_multi_objective(tmp_path):
    text = CFG.replace('[strategy]\nname = "brute_force"', '[strategy]\nname = "nsga2"')
    cfg = loads_config(text + "[score]\nmode = 'pareto'\n")
    result = run_study(cfg, n_trials=6, out_dir=tmp_path, hardware=fake_hardware, progress=False)
    study = optuna.load_study(study_name="e2e", storage=result.storage)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE", "MINIMIZE"]
    best = json.loads((tmp_path / "e2e" / "best.json").read_text())
    directions = {"accuracy": "maximize", "lut_eq": "minimize", "latency": "minimize"}
    assert best["objectives"] == directions
    assert best["best"] and all(e["metrics"]["accuracy"] >= 0.85 for e in best["best"])
    front = {e["trial"] for e in best["best"]}
    assert front == {t.number for t in study.best_trials}
    assert (tmp_path / "e2e" / "pareto.png").stat().st_size > 1000


@pytest.mark.slow
def test_smoke_config_with_real_synthesis(tmp_path, capsys):
    cfg = load_config(CONFIGS / "smoke.toml")
    assert main(["run", str(CONFIGS / "smoke.toml"), "--out", str(tmp_path), "--no-progress"]) == 0
    assert "best of study smoke" in capsys.readouterr().out
    rows = csv_rows(tmp_path / "smoke" / "trials.csv")
    assert [r["state"] for r in rows] == ["COMPLETE"] * 4
    best = json.loads((tmp_path / "smoke" / "best.json").read_text())
    ref = best["reference_metrics"]
    # the point (2, 8) is the reference design: every normalised metric is 1
    (same,) = [r for r in rows if (r["fc1.weight_width"], r["fc1.act_width"]) == ("2", "8")]
    assert float(same["lut_eq"]) == ref["lut_eq"] > 0
    assert float(same["score"]) == pytest.approx(1.0 - 0.5 - 0.2, abs=1e-12)
    assert float(rows[2]["lut_eq"]) > float(rows[0]["lut_eq"])  # 3-bit weights cost more than 2
    (entry,) = best["best"]
    assert Path(entry["verilog"]).is_file()
    assert {m.name for m in cfg.metrics} <= set(entry["metrics"])


NOHW = """
[model]
name = "jsc-toy"
activation = "leaky_relu"
[space.default]
weight_width = [3, 4, 5, 6]
leaky_impl = ["shift", "mult"]
[hardware]
enabled = false
[metrics.accuracy]
[metrics.bitops]
scale = 0.2
"""


@pytest.mark.parametrize("strategy", ["grid", "random", "tpe", "nsga2", "qmc"])
def test_every_strategy_runs_its_budget(strategy, tmp_path):
    cfg = loads_config(NOHW)
    result = run_study(
        cfg, strategy=strategy, n_trials=3, out_dir=tmp_path, progress=False, reports=False
    )
    assert (result.ran, result.total, result.space_size) == (3, 3, 4**3 * 2**2)
    study = optuna.load_study(study_name="search", storage=result.storage)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert set(study.trials[0].params) == {
        "fc1.weight_width", "fc1.leaky_impl", "fc2.weight_width", "fc2.leaky_impl",
        "fc3.weight_width",
    }  # fmt: skip
    again = run_study(
        cfg, strategy=strategy, out_dir=tmp_path, n_trials=4, progress=False, reports=False
    )
    assert (again.ran, again.total) == (1, 4)  # the budget counts the trials already run
