"""``[training] l1``: the adder-aware regulariser of QAT (``models.train.weight_l1``).

It changes training only: ``l1 = 0`` trains exactly as before it existed, ``l1 > 0`` leaves
fewer nonzero weights and adders, and the network it leaves is still exactly what qspec
computes.  As a config key it is validated, keeps the fingerprints of the configs that do
not set it, and with several choices is a searched dimension ``l1``.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from hdl.network import adder_count
from models.data import load_dataset
from models.fold import fold_batchnorm
from models.qconfig import QuantConfig
from models.quant import FakeQuantNet, quantise_network, weight_rules
from models.train import TrainConfig, finetune_spec, load_float, weight_l1
from search.config import ConfigError, loads_config
from search.records import TRAINING_ATTR, spec_hash
from search.space import SearchSpace
from search.trial import Evaluator, context_of
from tests.test_qat_exact import check_exact
from tests.test_search_training import BASE, QAT

# jsc-toy (relu), 4-bit weights of at most 2 digits, fine-tuned 20 epochs from the shipped
# checkpoint; the hash is of the spec finetune_spec returned before l1 existed (2a8e44e)
TABLE = {"weight_width": 4, "act_width": 6, "bias_width": 10, "max_digits": 2}
CFG = TrainConfig(epochs=20, batch_size=128, lr=2e-3, patience=5, seed=0)
TODAYS_SPEC = "e0cdf9bed660c018"


@pytest.fixture(scope="module")
def setup():
    ds = load_dataset("digits16")
    folded = fold_batchnorm(load_float("jsc-toy", "digits16", "relu")[0])
    qc = QuantConfig.from_dict({"default": TABLE})
    return ds, folded, quantise_network(folded, qc, ds.train.x), weight_rules(folded, qc)


def nonzero(net) -> int:
    return sum(int(np.count_nonzero(ly.weight)) for ly in net.linear_layers)


def test_l1_zero_reproduces_todays_weights_exactly(setup):
    ds, folded, spec, rules = setup
    before, f0, info0 = finetune_spec(folded, spec, ds, CFG, rules=rules)
    zero, f1, info1 = finetune_spec(folded, spec, ds, CFG, rules=rules, l1=0.0)
    assert spec_hash(before) == spec_hash(zero) == TODAYS_SPEC
    assert info0 == info1
    s0, s1 = f0.state_dict(), f1.state_dict()
    assert all(torch.equal(s0[k], s1[k]) for k in s0)  # the float shadows too


def test_l1_lowers_nonzero_weights_and_adders_and_stays_exact(setup):
    ds, folded, spec, rules = setup
    plain, _, _ = finetune_spec(folded, spec, ds, CFG, rules=rules)
    reg, f_reg, info = finetune_spec(folded, spec, ds, CFG, rules=rules, l1=1.0)
    assert info["best_epoch"] > 0  # the regularised weights were kept, not the start
    assert nonzero(reg) < nonzero(plain), (nonzero(reg), nonzero(plain))
    assert adder_count(reg) < adder_count(plain), (adder_count(reg), adder_count(plain))
    # only training changed: the fake-quant forward of those weights is qspec's, bit for bit
    model = FakeQuantNet(f_reg, reg, weights="float", rules=rules)
    assert model.to_spec() == reg
    check_exact(model, ds)


def test_weight_l1_is_mean_magnitude_in_steps(setup):
    _, folded, spec, _ = setup
    want = np.mean(
        np.concatenate(
            [
                np.abs(ly.linear.weight.detach().numpy().ravel()) * 2.0**s.weight_fmt.frac_width
                for ly, s in zip(folded.layers, spec.linear_layers, strict=True)
            ]
        )
    )
    got = weight_l1(folded, spec)
    assert got.requires_grad and got.item() == pytest.approx(want, rel=1e-12)


def test_bad_l1_is_refused(setup):
    ds, folded, spec, _ = setup
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="l1 must be a finite number >= 0"):
            finetune_spec(folded, spec, ds, CFG, l1=bad)


@pytest.mark.parametrize(
    "table, message",
    [
        ("epochs = 2\nl1 = -0.1", "training.l1 must be a number >= 0 (a list of them: a searched"),
        ("epochs = 2\nl1 = 'big'", "training.l1 must be a number >= 0"),
        ("epochs = 2\nl1 = true", "training.l1 must be a number >= 0"),
        ("epochs = 2\nl1 = []", "training.l1 must list at least one choice"),
        ("epochs = 2\nl1 = [1, 1.0]", "training.l1[1] repeats the choice 1.0"),
        ("epochs = 2\nl1 = [0, -1]", "training.l1[1] must be a number >= 0"),
        ("l1 = 0.5", "training.l1 regularises fine-tuning; it needs training.epochs > 0"),
    ],
)
def test_bad_l1_keys_are_one_line_errors(table, message):
    with pytest.raises(ConfigError) as e:
        loads_config(BASE + f"[training]\n{table}\n")
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_fingerprint_changes_only_when_l1_is_set():
    qat = loads_config(QAT)
    assert loads_config(QAT + "l1 = 0\n").fingerprint == qat.fingerprint
    assert loads_config(QAT + "l1 = [0.0]\n").fingerprint == qat.fingerprint
    assert loads_config(BASE + "[training]\nl1 = 0\n").fingerprint == loads_config(BASE).fingerprint
    prints = {loads_config(QAT + f"l1 = {v}\n").fingerprint for v in ("0.5", "1", "[0, 1]")}
    assert len(prints) == 3 and qat.fingerprint not in prints
    assert "l1" not in qat.training.to_dict()  # records and cache keys as before
    assert loads_config(QAT + "l1 = [0, 1]\n").training.to_dict()["l1"] == [0.0, 1.0]


def test_searched_l1_is_a_dimension_the_trials_train_with(tmp_path, monkeypatch):
    from search.run import run_study

    monkeypatch.setenv("HWFIRST_TRAIN_CACHE", "0")
    fixed = loads_config(QAT)
    cfg = loads_config(QAT + "l1 = [0, 3]\n", name="l1")
    space = SearchSpace.from_config(cfg)
    assert space.dims[-1].name == "l1" and space.dims[-1].choices == (0.0, 3.0)
    assert "l1" not in {d.name for d in SearchSpace.from_config(fixed).dims}
    point = next(space.grid())
    ev, ev0 = Evaluator(cfg, context_of(cfg), None), Evaluator(fixed, context_of(fixed), None)
    d0 = space.design(point | {"l1": 0.0})
    d3 = space.design(point | {"l1": 3.0})
    assert d3.l1 == 3.0 and d3.to_dict()["l1"] == 3.0
    plain = SearchSpace.from_config(fixed).design({k: v for k, v in point.items() if k != "l1"})
    assert ev.build(d0) == ev0.build(plain)  # l1 = 0 of the dimension: the study without it
    net3, rec3 = ev.build(d3)
    assert rec3[TRAINING_ATTR]["l1"] == 3.0 and net3 != ev.build(d0)[0]
    res = run_study(cfg, n_trials=2, out_dir=tmp_path, progress=False)
    with res.reports.trials_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert {r["l1"] for r in rows} <= {"0.0", "3.0"} and len(rows) == 2
    best = json.loads(res.reports.best_json.read_text())["best"][0]
    assert "spec_mismatch" not in best  # the report trained again with the trial's l1
