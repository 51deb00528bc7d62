"""search.space: how default/type/layer tables resolve into dimensions and QuantConfigs."""

from __future__ import annotations

import optuna
import pytest

from search.config import ConfigError, loads_config
from search.space import Dimension, SearchSpace

TOY = """
[model]
name = "jsc-toy"
activation = "leaky_relu"
[hardware]
enabled = false
[metrics.accuracy]
"""


def space(extra: str) -> SearchSpace:
    return SearchSpace.from_config(loads_config(TOY + extra))


def test_levels_dimensions_and_width_shorthand():
    s = space(
        """
[space]
impl = ["adder_tree", "mul"]
[space.default]
width = [4, 8]
leaky_impl = ["shift", "mult"]
input_width = 6
[space.types.output]
act_width = [10, 12]
[space.layers.fc2]
weight_width = [2, 3]
"""
    )
    assert [d.name for d in s.dims] == [
        "fc1.width", "fc1.leaky_impl", "fc2.width", "fc2.weight_width", "fc2.leaky_impl",
        "fc3.width", "fc3.act_width", "impl",
    ]  # fmt: skip
    assert s.size == 2**8
    point = dict.fromkeys((d.name for d in s.dims), None) | {
        "fc1.width": 4, "fc1.leaky_impl": "shift", "fc2.width": 8, "fc2.weight_width": 3,
        "fc2.leaky_impl": "mult", "fc3.width": 4, "fc3.act_width": 12, "impl": "mul",
    }  # fmt: skip
    design = s.design(point)
    q = design.quant_config()
    fc1, fc2, fc3 = (q.for_layer(n) for n in ("fc1", "fc2", "fc3"))
    # explicit input_width (same level) beats the shorthand; only the first layer takes input_*
    assert (fc1.input_width, fc1.weight_width, fc1.act_width, fc1.leaky_impl) == (6, 4, 4, "shift")
    assert (fc2.weight_width, fc2.bias_width, fc2.act_width) == (3, 8, 8)
    assert (fc3.weight_width, fc3.act_width) == (4, 12)
    assert q.explicit_input <= {"fc1"}  # no requantise between layers
    assert design.impl == "mul" and design.stages == 0
    assert "leaky_impl" not in design.to_dict()["layers"]["fc3"]  # the output has no activation


def test_layer_width_replaces_inherited_widths_and_own_input_requantises():
    s = space(
        """
[space.default]
weight_width = [4, 6]
[space.layers.fc2]
width = 5
input_frac_width = 2
"""
    )
    assert [d.name for d in s.dims] == ["fc1.weight_width", "fc3.weight_width"]
    point = {"fc1.weight_width": 6, "fc3.weight_width": 4}
    q = s.design(point).quant_config()
    assert q.for_layer("fc2").weight_width == 5 and q.for_layer("fc2").input_width == 5
    assert q.for_layer("fc2").input_frac_width == 2 and q.explicit_input == {"fc2"}
    with pytest.raises(ValueError, match="^point has dimensions"):
        s.design({"fc1.weight_width": 6})


def test_calibrate_means_omitted_frac():
    s = space("[space.default]\nweight_frac_width = ['calibrate', 3]\n")
    q = s.design({f"fc{i}.weight_frac_width": "calibrate" for i in (1, 2, 3)}).quant_config()
    assert q.for_layer("fc1").weight_frac_width is None


def test_int_progressions_use_suggest_int():
    assert Dimension("a", (2, 4, 6)).int_step == 2
    assert Dimension("a", (2, 4, 8)).int_step is None
    assert Dimension("a", (8, 4)).int_step is None
    assert Dimension("a", (2, "calibrate")).int_step is None
    study = optuna.create_study()
    trial = study.ask()
    Dimension("w", (2, 4, 6)).suggest(trial)
    Dimension("f", (2, "calibrate")).suggest(trial)
    dists = trial.distributions
    assert dists["w"] == optuna.distributions.IntDistribution(2, 6, step=2)
    assert dists["f"] == optuna.distributions.CategoricalDistribution([2, "calibrate"])


def test_grid_order_and_keys():
    s = space("[space.default]\nweight_width = [4, 8]\n[space.layers.fc3]\nweight_width = 2\n")
    grid = list(s.grid())
    assert grid == [
        {"fc1.weight_width": 4, "fc2.weight_width": 4},
        {"fc1.weight_width": 4, "fc2.weight_width": 8},
        {"fc1.weight_width": 8, "fc2.weight_width": 4},
        {"fc1.weight_width": 8, "fc2.weight_width": 8},
    ]
    assert s.key(grid[1]) == '{"fc1.weight_width":4,"fc2.weight_width":8}'


def test_strategy_options_are_checked_at_load():
    with pytest.raises(ConfigError) as e:
        loads_config(
            TOY + "[strategy]\nname = 'random'\n[strategy.options]\nn_startup_trials = 3\n"
        )
    assert str(e.value) == (
        "strategy.options.n_startup_trials is not an option of random (RandomSampler); "
        "allowed: none"
    )
