"""search.config: shipped configs load; bad configs fail with one exact line naming the key path."""

from __future__ import annotations

import pytest

from search.cli import main
from search.config import ConfigError, load_config, loads_config
from search.space import SearchSpace
from tests.conftest import CONFIGS, PINNED_FINGERPRINTS

BASE = """
[model]
name = "jsc-toy"
activation = "leaky_relu"
[space.default]
weight_width = [4, 8]
[hardware]
enabled = false
[metrics.accuracy]
scale = 1.0
"""


def test_shipped_configs_load_with_expected_sizes():
    sizes = {p.stem: SearchSpace.from_config(load_config(p)).size for p in CONFIGS.glob("*.toml")}
    assert sizes == {"smoke": 4, "seed_lab3": 12, "default": 216, "jsc_s_front": 5435817984}
    lab3 = load_config(CONFIGS / "seed_lab3.toml")
    assert {m.name: m.scale for m in lab3.metrics} == {
        "accuracy": 1.0,
        "average_bitwidth": 0.2,
        "flops": 0.1,
        "bitops": 0.2,
        "lut_eq": 0.2,
        "latency": 0.1,
    }
    assert lab3.storage.study == "seed_lab3" and lab3.strategy.name == "brute_force"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "[space.layers.fc2]\nweight_width = [4, 0]\n",
            "space.layers.fc2.weight_width[1] must be an integer in [1, 16], got 0",
        ),
        (
            "[space.layers.fc9]\nweight_width = 4\n",
            "space.layers.fc9 is not a layer of jsc-toy; allowed: fc1, fc2, fc3",
        ),
        (
            "[space.layers.fc3]\nleaky_impl = ['shift']\n",
            "space.layers.fc3.leaky_impl: the output layer has no activation; allowed: width, "
            "input_width, weight_width, bias_width, act_width, input_frac_width, "
            "weight_frac_width, bias_frac_width, act_frac_width, rounding, overflow, calibration, "
            "sparsity, max_digits",
        ),
        (
            "[space.layers.fc1]\nweight_frac_width = [3, 'auto']\n",
            'space.layers.fc1.weight_frac_width[1] must be an integer in [-16, 32] or "calibrate"'
            ", got 'auto'",
        ),
        (
            "[space.layers.fc1]\nrounding = ['floor', 'floor']\n",
            "space.layers.fc1.rounding[1] repeats the choice 'floor'; list each choice once",
        ),
        (
            "[space.layers.fc1]\nslope = []\n",
            "space.layers.fc1.slope must list at least one choice",
        ),
        (
            "[metrics.latency]\nscale = 1\n",
            "metrics.latency needs synthesis; set hardware.enabled = true or drop it",
        ),
        (
            "[metrics.speed]\n",
            "metrics.speed is not a metric; allowed: accuracy, loss, flops, bitops, "
            "average_bitwidth, size, adders, lut_eq, ffs, carries, dsps, latency, fmax, "
            "latency_ns, throughput",
        ),
        (
            "[metrics.loss]\ndirection = 'down'\n",
            "metrics.loss.direction must be one of maximize|minimize, got 'down'",
        ),
        (
            "[metrics.loss]\nscale = -0.5\n",
            "metrics.loss.scale must be a number >= 0 (direction sets the sign), got -0.5",
        ),
        (
            "[metrics.loss]\nmin = 2\nmax = 1\n",
            "metrics.loss.min must be <= metrics.loss.max, got 2.0 > 1.0",
        ),
        (
            "[strategy]\nname = 'cmaes'\n",
            "strategy.name must be one of brute_force|grid|random|tpe|nsga2|qmc, got 'cmaes'",
        ),
        (
            "[strategy]\nn_trials = 0\n",
            "strategy.n_trials must be an integer in [1, 1000000], got 0",
        ),
        (
            "[strategy.options]\nn_startup_trials = 'many'\n",
            "strategy.options.n_startup_trials must be an integer, got 'many'",
        ),
        (
            "[strategy.options]\nconstant_liar = 1\n",
            "strategy.options.constant_liar must be a boolean, got 1",
        ),
        (
            "[strategy.options]\nprior_weight = true\n",
            "strategy.options.prior_weight must be a number, got True",
        ),
        (
            "[strategy.options]\ngamma = 3\n",
            "strategy.options.gamma takes a Python object; not settable here",
        ),
        (
            "[strategy.options]\nseed = 3\n",
            "strategy.options.seed is not an option of tpe (TPESampler); allowed: "
            "consider_prior, prior_weight, consider_magic_clip, consider_endpoints, "
            "n_startup_trials, n_ei_candidates, gamma, weights, multivariate, group, "
            "warn_independent_sampling, constant_liar",
        ),
        (
            "[strategy]\nbudget = 3\n",
            "strategy.budget is not a key; allowed: name, n_trials, timeout, seed, options, "
            "pruner, pruner_warmup, pruner_startup, pruner_reduction",
        ),
        (
            "[score]\nmode = 'lexicographic'\n",
            "score.mode must be one of weighted|pareto, got 'lexicographic'",
        ),
        (
            "[score.reference.layers.fc1]\nweight_width = 40\n",
            "score.reference.layers.fc1.weight_width must be an integer in [1, 16], got 40",
        ),
        ("[hardware]\ntarget = 'xc7'\n", None),  # duplicate [hardware] table: a TOML error
        ("[space]\nstages = [0, 17]\n", "space.stages[1] must be an integer in [0, 16], got 17"),
        (
            "[searchx]\n",
            "searchx is not a section; allowed: model, space, strategy, storage, hardware, "
            "metrics, score, training",
        ),
    ],
)
def test_bad_config_one_exact_line(extra, message):
    with pytest.raises(ConfigError) as e:
        loads_config(BASE + extra, where="x.toml")
    if message is None:
        assert str(e.value).startswith("x.toml: Cannot declare ('hardware',) twice")
    else:
        assert str(e.value) == message
    assert "\n" not in str(e.value)


def test_mase_style_search_table_prefixes_paths():
    text = BASE.replace("[model]", "[search.model]").replace("[space.", "[search.space.")
    text = text.replace("[hardware]", "[search.hardware]").replace("[metrics.", "[search.metrics.")
    assert load_ok(text).model.name == "jsc-toy"
    bad = text + "[search.space.layers.fc2]\nweight_width = [4, 0]\n"
    with pytest.raises(ConfigError, match=r"^search\.space\.layers\.fc2\.weight_width\[1\] must"):
        loads_config(bad)


def load_ok(text):
    return loads_config(text)


def test_needs_a_scored_metric():
    text = BASE.replace("scale = 1.0", "scale = 0")
    with pytest.raises(ConfigError, match=r"^metrics needs at least one \[metrics.NAME\]"):
        loads_config(text)


def test_cli_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BASE + "[space.layers.fc2]\nweight_width = [4, 0]\n")
    out = tmp_path / "results"
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "python -m search: error: space.layers.fc2.weight_width[1] must be an integer in "
        "[1, 16], got 0\n"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "missing.toml"], "python -m search: error: config file not found: missing.toml"),
        (
            ["run", "x.toml", "--trials", "0"],
            "python -m search: error: --trials must be an integer in [1, 1000000], got '0'",
        ),
        (
            ["report", "nowhere.db", "--study", "s"],
            "python -m search: error: STORAGE: no such database file: nowhere.db",
        ),
    ],
)
def test_cli_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err == message + "\n"


def test_fingerprint_ignores_only_what_changes_no_result():
    base = loads_config(BASE)
    assert loads_config(BASE + "[strategy]\nname = 'random'\n").fingerprint == base.fingerprint
    assert (
        loads_config(BASE.replace("enabled = false", "enabled = false\ntimeout = 5")).fingerprint
        == base.fingerprint
    )
    for changed in (BASE.replace("[4, 8]", "[4, 6]"), BASE + "[score]\nmode = 'pareto'\n"):
        assert loads_config(changed).fingerprint != base.fingerprint


def test_ice40_hardware_defaults_to_the_subtractor_free_linear():
    base = (CONFIGS / "smoke.toml").read_text()
    assert load_config(CONFIGS / "smoke.toml").hardware.impl == "adder_tree"
    text = base.replace('target = "ecp5"', 'target = "ice40"').replace('impl = "adder_tree"\n', "")
    assert 'target = "ice40"' in text
    assert loads_config(text).hardware.impl == "adder_tree_nosub"


def _kind(annotation: str) -> str:
    """``"int | None"`` -> ``"int"``; anything but a scalar -> ``"object"``."""
    parts = {p.strip() for p in annotation.split("|")} - {"None"}
    return parts.pop() if len(parts) == 1 and parts <= {"int", "float", "bool", "str"} else "object"


def test_sampler_option_table_matches_optuna():
    """search.strategies.SAMPLER_OPTIONS (read without Optuna) is Optuna's signatures."""
    import inspect

    import optuna

    from search.strategies import RESERVED, SAMPLER_OPTIONS, STRATEGIES

    assert set(SAMPLER_OPTIONS) == {s.sampler for s in STRATEGIES.values()}
    for name, table in SAMPLER_OPTIONS.items():
        params = inspect.signature(getattr(optuna.samplers, name)).parameters
        real = {k: _kind(str(p.annotation)) for k, p in params.items() if k not in RESERVED}
        assert table == real, name


def test_loading_a_config_imports_no_optuna():
    import subprocess
    import sys

    code = (
        "import sys, search.config as c; c.load_config(sys.argv[1]);print('optuna' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(CONFIGS / "default.toml")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(("name", "fingerprint"), sorted(PINNED_FINGERPRINTS.items()))
def test_shipped_fingerprints_are_stable(name, fingerprint):
    """Studies created by earlier versions resume only while their fingerprint is unchanged."""
    assert load_config(CONFIGS / f"{name}.toml").fingerprint == fingerprint


def test_default_without_training_is_the_earlier_default():
    """default.toml before it gained [training]: its studies' fingerprint still comes out."""
    text = (CONFIGS / "default.toml").read_text()
    ptq = text[: text.index("[training]")] + text[text.index("[hardware]") :]
    assert loads_config(ptq, name="default").fingerprint == "5c88d6259a6f025e"
