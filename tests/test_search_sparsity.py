"""``sparsity`` and ``max_digits`` as search dimensions: validated like every layer key,
fingerprints of configs without them unchanged, trials apply them (PTQ and QAT) and record
them in trials.csv and best.json."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from qspec.digits import csd_weight
from search.cli import main
from search.config import ConfigError, loads_config
from search.space import SearchSpace
from search.trial import Evaluator, context_of

BASE = """
[model]
name = "jsc-toy"
activation = "relu"
[space.default]
width = [6]
[strategy]
name = "brute_force"
[hardware]
enabled = false
[metrics.accuracy]
scale = 1.0
"""
SPACE = BASE + "[space.layers.fc1]\nsparsity = [0.0, 0.5]\nmax_digits = [0, 2]\n"


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            "[space.layers.fc1]\nsparsity = [0.0, 1.0]\n",
            "space.layers.fc1.sparsity[1] must be a real number in [0, 1), got 1.0",
        ),
        (
            "[space.layers.fc1]\nsparsity = [-0.25]\n",
            "space.layers.fc1.sparsity[0] must be a real number in [0, 1), got -0.25",
        ),
        (
            "[space.layers.fc2]\nmax_digits = [2, 17]\n",
            "space.layers.fc2.max_digits[1] must be an integer in [0, 16], got 17",
        ),
        (
            "[space.layers.fc2]\nmax_digits = [1.5]\n",
            "space.layers.fc2.max_digits[0] must be an integer in [0, 16], got 1.5",
        ),
        (
            "[score.reference.layers.fc3]\nsparsity = 1\n",
            "score.reference.layers.fc3.sparsity must be a real number in [0, 1), got 1",
        ),
        (
            "[score.reference.default]\nmax_digits = -1\n",
            "score.reference.default.max_digits must be an integer in [0, 16], got -1",
        ),
    ],
)
def test_bad_keys_are_one_line_errors_naming_the_path(extra, message):
    with pytest.raises(ConfigError) as e:
        loads_config(BASE + extra, where="x.toml")
    assert str(e.value) == message


def test_cli_exits_2(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BASE + "[space.layers.fc1]\nsparsity = [0.0, 1.0]\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == (
        "python -m search: error: space.layers.fc1.sparsity[1] must be a real number in "
        "[0, 1), got 1.0\n"
    )


def test_fingerprints_change_only_when_the_keys_are_used():
    base = loads_config(BASE).fingerprint
    # the defaults, written out in the reference, change no result
    ref = "[score.reference.default]\nsparsity = 0.0\nmax_digits = 0\n"
    assert loads_config(BASE + ref).fingerprint == base
    assert loads_config(SPACE).fingerprint != base
    assert loads_config(BASE + "[score.reference.default]\nmax_digits = 3\n").fingerprint != base


def test_space_has_the_dimensions_and_designs_apply_them():
    cfg = loads_config(SPACE)
    space = SearchSpace.from_config(cfg)
    assert space.size == 4
    names = [d.name for d in space.dims]
    assert any("sparsity" in n for n in names) and any("max_digits" in n for n in names)
    ev = Evaluator(cfg, context_of(cfg), None)
    seen = {}
    for p in space.grid():
        d = space.design(p)
        net, metrics, _ = ev.measure(d)
        layers = d.to_dict()["layers"]
        for ly in net.linear_layers:
            w = np.array(ly.weight)
            keys = layers[ly.name]
            if keys["max_digits"]:
                assert (csd_weight(w) <= keys["max_digits"]).all()
            if keys["sparsity"]:
                assert (w == 0).sum() >= int(keys["sparsity"] * w.size)
        key = (layers["fc1"]["sparsity"], layers["fc1"]["max_digits"])
        seen[key] = metrics["accuracy"]
    assert set(seen) == {(0.0, 0), (0.5, 0), (0.0, 2), (0.5, 2)}


def test_study_records_the_keys_in_trials_csv_and_best_json(tmp_path):
    from search.run import run_study

    text = SPACE + "[training]\nepochs = 1\nbatch_size = 512\npatience = 1\nseed = 1\n"
    cfg = loads_config(text, name="sparse")
    res = run_study(cfg, n_trials=4, out_dir=tmp_path, progress=False)
    with res.reports.trials_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    header = rows[0].keys()
    assert any("sparsity" in h for h in header) and any("max_digits" in h for h in header)
    best = json.loads(res.reports.best_json.read_text())["best"][0]
    fc1 = best["config"]["layers"]["fc1"]
    assert {"sparsity", "max_digits"} <= set(fc1)
    # the exported spec is the scored one: its codes keep the trial's constraints
    from qspec.network import QuantisedNetwork

    spec = QuantisedNetwork.from_json(Path(best["spec"]).read_text())
    w = np.array(spec.linear_layers[0].weight)
    if fc1["max_digits"]:
        assert (csd_weight(w) <= fc1["max_digits"]).all()
    if fc1["sparsity"]:
        assert (w == 0).sum() >= int(fc1["sparsity"] * w.size)
    assert "spec_mismatch" not in best


def test_adders_metric_falls_with_the_budgets_without_synthesis():
    """``[metrics.adders]`` (no hardware): the generator's adder count, which a digit budget
    or pruning lowers; it equals hdl.network.adder_count of the scored network."""
    from hdl.network import adder_count

    text = SPACE + "[metrics.adders]\nscale = 0.5\n"
    cfg = loads_config(text)
    space = SearchSpace.from_config(cfg)
    ev = Evaluator(cfg, context_of(cfg), None)
    got = {}
    for p in space.grid():
        d = space.design(p)
        net, metrics, _ = ev.measure(d)
        assert metrics["adders"] == adder_count(net, d.impl) > 0
        fc1 = d.to_dict()["layers"]["fc1"]
        got[(fc1["sparsity"], fc1["max_digits"])] = metrics["adders"]
    assert got[(0.5, 2)] < got[(0.5, 0)] < got[(0.0, 0)]
    assert got[(0.0, 2)] < got[(0.0, 0)]
    assert "adders" in ev.reference()
    assert "adders" not in Evaluator(loads_config(SPACE), context_of(cfg), None).reference()
