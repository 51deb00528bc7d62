"""Multi-fidelity search: hardware.fidelity / hardware.confirm, where each figure came from,
derived metrics (latency_ns, throughput), and the config errors."""

from __future__ import annotations

import csv
import io
import json

import optuna
import pytest

from search.config import ConfigError, loads_config
from search.hardware import HardwareParams, with_derived
from search.records import CONFIRMED_ATTR, HW_SOURCE_ATTR
from search.run import run_study

BASE = """
[model]
name = "jsc-tiny"
[space.default]
weight_width = [2, 3, 4, 6]
act_width = [4, 8]
[strategy]
name = "brute_force"
[storage]
study = "fid"
[metrics.accuracy]
[metrics.lut_eq]
direction = "minimize"
[score]
mode = "{mode}"
[hardware]
fidelity = "model"
confirm = {confirm}
"""

CALLS: list[str] = []


def two_fidelities(net, hw: HardwareParams) -> dict[str, float]:
    """A stand-in whose model and synthesis disagree by a known amount (never shipped)."""
    (fc1,) = net.linear_layers
    CALLS.append(hw.fidelity)
    lut = 100.0 * fc1.weight_fmt.width + fc1.out_fmt.width
    if hw.fidelity == "model":
        return {"lut_eq": lut, "latency": 1.0, "ii": 1.0, "fmax": 100.0}
    return {"lut_eq": lut + 7.0, "latency": 1.0, "ii": 1.0}


def _run(tmp_path, mode: str, confirm: int):
    CALLS.clear()
    cfg = loads_config(BASE.format(mode=mode, confirm=confirm))
    res = run_study(cfg, out_dir=tmp_path, hardware=two_fidelities, progress=False)
    study = optuna.load_study(study_name=res.study, storage=res.storage)
    return cfg, res, study


def test_pareto_front_is_confirmed_by_synthesis(tmp_path):
    cfg, res, study = _run(tmp_path, "pareto", 100)
    confirmed = study.user_attrs[CONFIRMED_ATTR]
    front = {t.number for t in study.best_trials}
    assert front and set(map(int, confirmed)) == front
    for number, c in confirmed.items():
        t = study.trials[int(number)]
        assert t.user_attrs[HW_SOURCE_ATTR] == "model"
        assert c["lut_eq"] == t.user_attrs["lut_eq"] + 7.0  # the synthesised figure
        assert c["predicted"]["lut_eq"] == t.user_attrs["lut_eq"]
        assert c["source"] == "yosys"
    # every trial was modelled once (8 points + no reference in Pareto mode), the front
    # synthesised once each
    assert CALLS.count("model") == 8 and CALLS.count("synth") == len(front)
    rows = list(csv.DictReader(io.StringIO((res.out_dir / "trials.csv").read_text())))
    by = {int(r["number"]): r for r in rows}
    for n in front:
        assert float(by[n]["synth_lut_eq"]) == float(by[n]["lut_eq"]) + 7.0
        assert by[n][HW_SOURCE_ATTR] == "model" and by[n]["synth_source"] == "yosys"
    off = [r for r in rows if int(r["number"]) not in front]
    assert off and all(r["synth_lut_eq"] == "" for r in off)
    best = json.loads((res.out_dir / "best.json").read_text())["best"]
    assert {e["trial"] for e in best} == front
    assert all(e["confirmed"]["lut_eq"] == e["metrics"]["lut_eq"] + 7.0 for e in best)


def test_weighted_top_k_and_no_second_synthesis(tmp_path):
    cfg, res, study = _run(tmp_path, "weighted", 3)
    confirmed = study.user_attrs[CONFIRMED_ATTR]
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    top = sorted(done, key=lambda t: (-t.user_attrs["score"], t.number))[:3]
    assert set(map(int, confirmed)) == {t.number for t in top}
    CALLS.clear()
    run_study(cfg, out_dir=tmp_path, hardware=two_fidelities, progress=False)  # resumed
    assert "synth" not in CALLS  # already confirmed: nothing synthesised again


def test_derived_metrics():
    m = with_derived({"latency": 3.0, "ii": 1.0, "fmax": 200.0})
    assert m["latency_ns"] == 15.0 and m["throughput"] == 200.0
    assert "latency_ns" not in with_derived({"latency": 3.0})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "[hardware]\nconfirm = 4\n",
            'hardware.confirm confirms what the model scored; set hardware.fidelity = "model" '
            "or drop it",
        ),
        (
            '[hardware]\nfidelity = "exact"\n',
            "hardware.fidelity must be one of synth|model, got 'exact'",
        ),
        (
            "[metrics.latency_ns]\n",
            "metrics.latency_ns needs an fmax; set hardware.fmax = true or hardware.fidelity = "
            '"model", or drop it',
        ),
    ],
)
def test_config_errors(extra, message):
    text = '[model]\nname = "jsc-tiny"\n[metrics.accuracy]\n' + extra
    with pytest.raises(ConfigError) as e:
        loads_config(text)
    assert str(e.value) == message


def test_fidelity_model_is_in_the_fingerprint():
    text = '[model]\nname = "jsc-tiny"\n[metrics.accuracy]\n[metrics.lut_eq]\n'
    synth = loads_config(text).fingerprint
    assert loads_config(text + '[hardware]\nfidelity = "synth"\n').fingerprint == synth
    assert loads_config(text + '[hardware]\nfidelity = "model"\n').fingerprint != synth


def test_a_large_front_is_confirmed_at_both_ends(tmp_path):
    """confirm = 2 on a longer front: its least and its most accurate design."""
    cfg, res, study = _run(tmp_path, "pareto", 2)
    front = sorted(study.best_trials, key=lambda t: (t.values[0], t.number))
    assert len(front) > 2
    confirmed = {int(n) for n in study.user_attrs[CONFIRMED_ATTR]}
    assert confirmed == {front[0].number, front[-1].number}
