"""Trials that learn cost less: the trained-weight cache, Optuna pruning on the per-epoch
val accuracy, the epoch in the progress bar, metric names on the study."""

from __future__ import annotations

import json

import optuna
import pytest

import models.train
from search import traincache
from search.config import ConfigError, load_config, loads_config
from search.records import PRUNED_EPOCH_ATTR, QAT_EPOCH_ATTR, QAT_VAL_ACCURACY_ATTR
from search.space import SearchSpace
from search.trial import Evaluator, context_of
from tests.conftest import CONFIGS, PINNED_FINGERPRINTS, csv_rows, load_study

BASE = """
[model]
name = "jsc-toy"
activation = "leaky_relu"
[space.default]
width = [2, 3, 4, 5]
leaky_impl = ["shift", "mult"]
[strategy]
name = "random"
n_trials = 6
{strategy}
[hardware]
enabled = false
[metrics.accuracy]
scale = 1.0
[metrics.bitops]
scale = 0.2
"""
TRAINING = "[training]\nepochs = 3\nbatch_size = 512\nlr = 0.005\npatience = 3\nseed = 1\n"


def cfg_of(strategy: str = "", training: str = TRAINING, name: str = "cp"):
    return loads_config(BASE.format(strategy=strategy) + training, name=name)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh trained-weight cache; counts ``_fit`` calls (training runs)."""
    monkeypatch.setenv("HWFIRST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(traincache.ENV, raising=False)
    calls = []
    real = models.train._fit

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(models.train, "_fit", counting)
    return calls


def _design(cfg, seed=0):
    space = SearchSpace.from_config(cfg)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return space.design(space.suggest(study.ask()))


def test_second_measure_of_a_point_trains_nothing_and_is_identical(cache):
    cfg = cfg_of()
    ev = Evaluator(cfg, context_of(cfg), None)
    d = _design(cfg)
    seen1, seen2 = [], []
    net1, m1, rec1 = ev.measure(d, lambda e, a: seen1.append((e, a)))
    assert len(cache) == 1 and len(list(traincache.cache_dir().glob("*.json"))) == 1
    net2, m2, rec2 = ev.measure(d, lambda e, a: seen2.append((e, a)))
    assert len(cache) == 1  # no second training run
    assert net1 == net2 and m1 == m2 and rec1 == rec2
    assert seen1 == seen2 and len(seen1) == rec1["training"]["epochs_run"]  # epochs replayed
    # another training table is another key: it trains
    other = cfg_of(training=TRAINING.replace("seed = 1", "seed = 2"))
    Evaluator(other, context_of(other), None).measure(d)
    assert len(cache) == 2


def test_cache_off_trains_every_time(cache, monkeypatch):
    monkeypatch.setenv(traincache.ENV, "0")
    cfg = cfg_of()
    ev = Evaluator(cfg, context_of(cfg), None)
    d = _design(cfg)
    ev.measure(d)
    ev.measure(d)
    assert len(cache) == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: "{not json",
        lambda t: "",
        lambda t: json.dumps({**json.loads(t), "key": "0" * 64}),  # another key's entry
        lambda t: json.dumps({**json.loads(t), "best_epoch": 99}),
        lambda t: json.dumps({**json.loads(t), "spec": {"layers": "x"}}),
    ],
)
def test_a_corrupt_entry_is_ignored_with_a_warning_and_rewritten(cache, capsys, damage):
    cfg = cfg_of()
    ev = Evaluator(cfg, context_of(cfg), None)
    d = _design(cfg)
    good = ev.measure(d)
    (entry,) = traincache.cache_dir().glob("*.json")
    text = entry.read_text()
    entry.write_text(damage(text))
    traincache._WARNED.clear()
    again = ev.measure(d)
    assert len(cache) == 2  # trained again, same result, never a crash
    assert again[0] == good[0] and again[1] == good[1]
    assert "trained-weight cache" in capsys.readouterr().err
    assert json.loads(entry.read_text()) == json.loads(text)  # healed


def test_a_second_study_on_the_same_points_trains_nothing(cache, tmp_path):
    from search.run import run_study

    cfg = cfg_of()  # random sampler, seed 0, 6 trials: the same points twice
    a = run_study(cfg, out_dir=tmp_path / "a", progress=False, reports=False)
    trained = len(cache)
    assert trained >= 2  # the reference + the distinct points
    b = run_study(cfg, out_dir=tmp_path / "b", progress=False, reports=False)
    assert len(cache) == trained  # same seed, same points: all from the cache
    sa = load_study(a.storage, a.study)
    sb = load_study(b.storage, b.study)
    assert [t.values for t in sa.trials] == [t.values for t in sb.trials]
    assert [t.user_attrs[QAT_EPOCH_ATTR] for t in sa.trials] == [
        t.user_attrs[QAT_EPOCH_ATTR] for t in sb.trials
    ]


# --- pruner ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "strategy, training, message",
    [
        ('pruner = "mean"', TRAINING,
         "strategy.pruner must be one of none|median|successive_halving|hyperband, got 'mean'"),
        ('pruner = "median"', "",
         "strategy.pruner = 'median' needs [training] epochs > 0"),
        ('pruner = "median"\npruner_reduction = 3', TRAINING,
         "strategy.pruner_reduction applies to pruner = successive_halving|hyperband only"),
        ('pruner_warmup = 2', TRAINING,
         "strategy.pruner_warmup applies to pruner = median|successive_halving|hyperband only"),
        ('pruner = "hyperband"\npruner_reduction = 1', TRAINING,
         "strategy.pruner_reduction must be an integer in [2, "),
        ('pruner = "median"\npruner_startup = -1', TRAINING,
         "strategy.pruner_startup must be an integer in [0, "),
    ],
)  # fmt: skip
def test_bad_pruner_tables_are_one_line_errors(strategy, training, message):
    with pytest.raises(ConfigError) as e:
        cfg_of(strategy, training)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_pruner_with_a_pareto_study_is_a_config_error():
    text = BASE.format(strategy='pruner = "median"') + TRAINING + "[score]\nmode = 'pareto'\n"
    with pytest.raises(ConfigError, match=r"strategy.pruner = 'median': Optuna cannot prune a "):
        loads_config(text)


def test_pruner_is_exit_2_on_the_command_line(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.format(strategy='pruner = "sometimes"') + TRAINING)
    p = subprocess.run(
        [sys.executable, "-m", "search", "run", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "python -m search: error: strategy.pruner must be one of "
        "none|median|successive_halving|hyperband, got 'sometimes'"
    ]
    assert not (tmp_path / "o").exists()


def test_a_pruner_keeps_the_fingerprint_and_the_pinned_ones_hold():
    assert cfg_of('pruner = "median"').fingerprint == cfg_of().fingerprint
    for name, fp in PINNED_FINGERPRINTS.items():
        assert load_config(CONFIGS / f"{name}.toml").fingerprint == fp


@pytest.mark.parametrize("pruner", ["median", "successive_halving", "hyperband"])
def test_pruned_trials_report_their_epochs_and_show_in_trials_csv(cache, tmp_path, pruner):
    from search.run import run_study

    opts = "pruner_startup = 1\npruner_warmup = 1" if pruner == "median" else "pruner_warmup = 1"
    cfg = cfg_of(f'pruner = "{pruner}"\n{opts}', name="pr")
    res = run_study(cfg, n_trials=12, out_dir=tmp_path, progress=False)
    study = load_study(res.storage, res.study)
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.PRUNED in states, states  # wide widths vs 2-bit: prunes
    for t in study.trials:
        assert t.intermediate_values  # every trial reported its epochs
        if t.state == optuna.trial.TrialState.PRUNED:
            assert t.user_attrs[PRUNED_EPOCH_ATTR] == max(t.intermediate_values)
            assert t.user_attrs[PRUNED_EPOCH_ATTR] < cfg.training.epochs or pruner != "median"
        else:
            assert PRUNED_EPOCH_ATTR not in t.user_attrs
            assert max(t.intermediate_values) == t.user_attrs["training"]["epochs_run"]
    rows = csv_rows(res.reports.trials_csv)
    pruned = [r for r in rows if r["state"] == "PRUNED"]
    assert pruned and all(r[PRUNED_EPOCH_ATTR] for r in pruned)
    assert all(r[QAT_VAL_ACCURACY_ATTR] for r in rows if r["state"] == "COMPLETE")


def test_no_pruner_prunes_nothing_but_reports_epochs(cache, tmp_path):
    from search.run import run_study

    res = run_study(cfg_of(), out_dir=tmp_path, progress=False, reports=False)
    study = load_study(res.storage, res.study)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert all(len(t.intermediate_values) >= 1 for t in study.trials)


# --- progress and metric names ---------------------------------------------------------------


def test_the_trial_bar_shows_the_running_trials_epoch(cache, tmp_path, monkeypatch):
    from search import run

    shown = []
    real = run._Progress.epoch

    def spy(self, epoch, epochs, acc):
        real(self, epoch, epochs, acc)
        shown.append(self.bar.postfix)

    monkeypatch.setattr(run._Progress, "epoch", spy)
    run.run_study(cfg_of(), n_trials=2, out_dir=tmp_path, progress=True, reports=False)
    assert shown and all("epoch " in s and "/3 val 0." in s for s in shown)
    assert shown[0].startswith("failed=0, epoch 1/3 val 0.")


@pytest.mark.parametrize("mode", ["weighted", "pareto"])
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_metric_names_are_set_on_create_and_on_reopen(cache, tmp_path, mode, kind):
    from search.run import run_study

    cfg = loads_config(BASE.format(strategy="") + f"[score]\nmode = '{mode}'\n", name="mn")
    url = f"sqlite:///{tmp_path}/s.db" if kind == "sqlite" else f"journal:///{tmp_path}/s.log"
    run_study(cfg, n_trials=1, storage=url, out_dir=tmp_path, progress=False, reports=False)
    want = ["score"] if mode == "weighted" else ["accuracy", "bitops"]
    assert load_study(url, "mn").metric_names == want
    # a study made before names were set gets them when it is reopened
    study = load_study(url, "mn")
    study._storage.set_study_system_attr(study._study_id, "study:metric_names", None)
    assert load_study(url, "mn").metric_names is None
    run_study(cfg, n_trials=2, storage=url, out_dir=tmp_path, progress=False, reports=False)
    assert load_study(url, "mn").metric_names == want


def test_a_pruned_study_again_prunes_the_same_trials_and_trains_only_those(cache, tmp_path):
    """Cached points replay their epochs to the pruner; a pruned trial's partial training is
    not cached (it is not a result), so only the pruned trials train again."""
    from search.run import run_study

    cfg = cfg_of('pruner = "median"\npruner_startup = 1', name="again")
    states = []
    for run in ("a", "b"):
        before = len(cache)
        res = run_study(cfg, n_trials=10, out_dir=tmp_path / run, progress=False, reports=False)
        study = load_study(res.storage, res.study)
        states.append([(t.state, t.user_attrs.get(PRUNED_EPOCH_ATTR)) for t in study.trials])
        trained = len(cache) - before
    pruned = sum(s == optuna.trial.TrialState.PRUNED for s, _ in states[1])
    assert states[0] == states[1] and pruned > 0
    assert trained == pruned
