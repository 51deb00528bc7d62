"""``[training]``: validation, fingerprints, epochs = 0 is exactly PTQ, and a QAT study
records, reports and exports the network it scored."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from qspec.limits import MAX_EPOCHS, MAX_SEED
from search.config import ConfigError, TrainingConfig, loads_config
from search.records import (
    QAT_EPOCH_ATTR,
    QAT_SPEC_ATTR,
    QAT_VAL_ACCURACY_ATTR,
    TRAINING_ATTR,
    spec_hash,
)
from search.space import SearchSpace
from search.trial import Evaluator, context_of
from tests.conftest import CONFIGS

BASE = """
[model]
name = "jsc-toy"
activation = "leaky_relu"
[space.default]
width = [3, 4]
leaky_impl = ["shift", "mult"]
[strategy]
name = "brute_force"
[hardware]
enabled = false
[metrics.accuracy]
scale = 1.0
[metrics.bitops]
scale = 0.2
"""
QAT = BASE + "[training]\nepochs = 2\nbatch_size = 512\nlr = 0.005\npatience = 2\nseed = 3\n"


@pytest.mark.parametrize(
    "table, message",
    [
        ("epochs = -1", f"training.epochs must be an integer in [0, {MAX_EPOCHS}], got -1"),
        (f"epochs = {MAX_EPOCHS + 1}", "training.epochs must be an integer in [0, "),
        ("epochs = true", "training.epochs must be an integer"),
        ("lr = 0", "training.lr must be a number in (0, 1], got 0"),
        ("lr = 'x'", "training.lr must be a number in (0, 1]"),
        ("batch_size = 0", "training.batch_size must be an integer in [1, "),
        ("patience = 0", "training.patience must be an integer in [1, "),
        (f"seed = {MAX_SEED + 1}", f"training.seed must be an integer in [0, {MAX_SEED}]"),
        ("from = ''", "training.from must be a non-empty string"),
        ("from = 'a.json'", "training.from must be a checkpoint file ending in .pt"),
        ("epoch = 3", "training.epoch is not a key; allowed: epochs, lr, batch_size, patience"),
    ],
)
def test_bad_training_tables_are_one_line_errors(table, message):
    with pytest.raises(ConfigError) as e:
        loads_config(BASE + f"[training]\n{table}\n")
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_training_under_search_table_names_its_path():
    text = re.sub(r"^\[", "[search.", BASE, flags=re.M)
    with pytest.raises(ConfigError, match=r"^search\.training\.lr must"):
        loads_config(text + "[search.training]\nlr = 2\n")


def test_fingerprint_changes_only_when_training_changes_results():
    base = loads_config(BASE).fingerprint
    assert loads_config(BASE + "[training]\n").fingerprint == base
    assert loads_config(BASE + "[training]\nepochs = 0\nlr = 0.5\nseed = 9\n").fingerprint == base
    qat = loads_config(QAT).fingerprint
    assert qat != base
    assert loads_config(QAT.replace("seed = 3", "seed = 4")).fingerprint != qat
    assert loads_config(BASE + "[training]\nfrom = 'x.pt'\n").fingerprint != base


def test_shipped_configs_train_where_they_say_so():
    """default and jsc_s_front fine-tune (issue #17); smoke and seed_lab3 stay PTQ."""
    trained = {
        p.stem for p in CONFIGS.glob("*.toml") if loads_config(p.read_text()).training.enabled
    }
    assert trained == {"default", "jsc_s_front"}


def _designs(cfg):
    space = SearchSpace.from_config(cfg)
    return [space.design(p) for p in space.grid()]


def test_epochs_zero_is_exactly_ptq():
    ptq = loads_config(BASE)
    zero = loads_config(BASE + "[training]\nepochs = 0\nlr = 0.5\n")
    a, b = Evaluator(ptq, context_of(ptq), None), Evaluator(zero, context_of(zero), None)
    for d in _designs(ptq)[:4]:
        net_a, m_a, rec_a = a.measure(d)
        net_b, m_b, rec_b = b.measure(d)
        assert net_a == net_b and m_a == m_b and rec_a == rec_b == {}
    assert a.reference() == b.reference()


def test_qat_trial_is_deterministic_and_never_worse_on_val(monkeypatch):
    monkeypatch.setenv("HWFIRST_TRAIN_CACHE", "0")  # train twice: no cached second run
    cfg = loads_config(QAT)
    ev = Evaluator(cfg, context_of(cfg), None)
    ptq = loads_config(BASE)
    ev0 = Evaluator(ptq, context_of(ptq), None)
    d = _designs(cfg)[0]
    net1, m1, rec1 = ev.measure(d)
    net2, m2, rec2 = ev.measure(d)
    assert net1 == net2 and m1 == m2 and rec1 == rec2
    assert rec1[TRAINING_ATTR]["epochs"] == 2 and rec1[TRAINING_ATTR]["seed"] == 3
    assert 0 <= rec1[QAT_EPOCH_ATTR] <= rec1[TRAINING_ATTR]["epochs_run"] <= 2
    # model.split is val: the scored accuracy is the figure that chose the epoch
    assert m1["accuracy"] == rec1[QAT_VAL_ACCURACY_ATTR]
    assert m1["accuracy"] >= ev0.measure(d)[1]["accuracy"]


def test_qat_study_records_reports_and_exports_the_scored_network(tmp_path, monkeypatch):
    from qspec.integer_forward import predict, quantise_input
    from qspec.network import QuantisedNetwork
    from search.run import run_study

    monkeypatch.setenv("HWFIRST_TRAIN_CACHE", "0")  # the report must train again, not read
    cfg = loads_config(QAT, name="qat")
    res = run_study(cfg, n_trials=2, out_dir=tmp_path, progress=False)
    best = json.loads(res.reports.best_json.read_text())["best"][0]
    assert best[TRAINING_ATTR]["lr"] == 0.005 and QAT_EPOCH_ATTR in best
    with res.reports.trials_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(r[QAT_VAL_ACCURACY_ATTR] for r in rows)
    assert json.loads(rows[0][TRAINING_ATTR])["batch_size"] == 512
    spec = QuantisedNetwork.from_json(Path(best["spec"]).read_text())
    val = context_of(cfg).dataset.val
    acc = float(np.mean(predict(spec, quantise_input(spec, val.x)) == val.y))
    assert acc == best["metrics"]["accuracy"] == best[QAT_VAL_ACCURACY_ATTR]
    # the report trained again and got the very spec the trial scored
    assert best[QAT_SPEC_ATTR] == spec_hash(spec) and "spec_mismatch" not in best


def test_from_loads_that_checkpoint_and_refuses_another_models():
    from models.store import SHIPPED_DIR
    from search.trial import load_context

    own = SHIPPED_DIR / "jsc-toy_digits16_leaky_relu_s0.125.pt"
    cfg = loads_config(BASE + f"[training]\nfrom = '{own}'\n")
    ctx, default = context_of(cfg), context_of(loads_config(BASE))
    qc = _designs(cfg)[0].quant_config()
    assert ctx.build(qc) == default.build(qc)  # the same checkpoint: the same PTQ network
    for other, why in [
        (SHIPPED_DIR / "jsc-tiny_digits16.pt", "holds jsc-tiny_digits16, the model section"),
        (SHIPPED_DIR / "missing.pt", "checkpoint file not found"),
        (SHIPPED_DIR / "jsc-tiny_digits16.json", "is not a float checkpoint"),
    ]:
        with pytest.raises(ValueError, match=why):
            load_context(cfg.model, TrainingConfig(checkpoint=str(other)))
