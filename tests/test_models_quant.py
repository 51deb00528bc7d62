"""BN folding, PTQ: fake-quantised torch model == integer reference, config errors, QAT."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
import torch

from models.data import load_dataset
from models.fold import fold_batchnorm
from models.qconfig import QuantConfig
from models.quant import FakeQuantNet, calibrated_frac, mse_frac, quantise_network
from models.train import TrainConfig, train_qat
from models.zoo import MODELS, ModelSpec, build_model
from qspec.fixed import dequantise
from qspec.integer_forward import integer_forward, quantise_input
from qspec.leaky import LeakyReLUSpec
from qspec.network import LinearSpec, ReLUSpec, RequantiseSpec


@pytest.fixture(scope="module")
def ds():
    return load_dataset("digits16")


def random_model(name: str, activation: str, seed: int, in_features=16, classes=10):
    """A model with non-trivial BatchNorm statistics and affine parameters."""
    model = build_model(ModelSpec(name, in_features, classes, activation), seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen))
                m.running_var.copy_(torch.rand(n, generator=gen) * 3 + 0.1)
                m.weight.copy_(torch.randn(n, generator=gen))
                m.bias.copy_(torch.randn(n, generator=gen))
    return model.eval()


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_folding_is_exact_algebra(name, activation):
    model = random_model(name, activation, 1)
    folded = fold_batchnorm(model)
    x = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in folded.modules())
    assert torch.allclose(model(x), folded(x), atol=1e-4, rtol=1e-4)
    assert folded.names == [f"fc{i}" for i in range(1, len(MODELS[name]) + 2)]


def random_config(rng: random.Random, names: list[str]) -> QuantConfig:
    def table(first: bool) -> dict:
        t = {k: rng.randint(2, 10) for k in ("weight_width", "bias_width", "act_width")}
        t["input_width"] = rng.randint(2, 10)
        for k in ("input", "weight", "bias", "act"):
            if rng.random() < 0.4:  # otherwise calibrated
                t[f"{k}_frac_width"] = rng.randint(-2, 8)
        t["rounding"] = rng.choice(["floor", "nearest"])
        t["overflow"] = rng.choice(["saturate", "wrap"])
        t["leaky_impl"] = rng.choice(["shift", "mult"])
        t["slope"] = rng.choice([0.125, 0.3, 0.01])
        if first or rng.random() < 0.5:
            t.pop("input_width")
            t.pop("input_frac_width", None)
        return t

    return QuantConfig.from_dict(
        {"default": table(True), "layers": {n: table(i == 0) for i, n in enumerate(names)}}
    )


def assert_fake_quant_matches_integer(folded, spec, x: np.ndarray) -> np.ndarray:
    fq = FakeQuantNet(folded, spec)
    with torch.no_grad():
        y_torch = fq(torch.from_numpy(x)).numpy()
    codes = integer_forward(spec, quantise_input(spec, x))
    y_int = dequantise(codes.astype(np.float64), spec.output_fmt)
    np.testing.assert_array_equal(y_torch, y_int)
    assert np.array_equal(y_torch.argmax(axis=1), codes.argmax(axis=1))
    return codes


@pytest.mark.parametrize("name", list(MODELS))
def test_fake_quant_equals_integer_forward_random_configs(ds, name):
    rng = random.Random(name)
    kinds = set()
    for trial in range(12):
        activation = "relu" if trial % 2 else "leaky_relu"
        folded = fold_batchnorm(random_model(name, activation, trial))
        cfg = random_config(rng, folded.names)
        try:
            spec = quantise_network(folded, cfg, ds.train.x)
        except ValueError as e:  # a random bias_frac_width finer than the product: drop it
            assert "bias_frac_width must be <=" in str(e)
            cfg = QuantConfig(
                replace(cfg.default, bias_frac_width=None),
                {k: replace(v, bias_frac_width=None) for k, v in cfg.layers.items()},
                cfg.explicit_input,
            )
            spec = quantise_network(folded, cfg, ds.train.x)
        kinds |= {type(ly).__name__ + getattr(ly, "impl", "") for ly in spec.layers}
        codes = assert_fake_quant_matches_integer(folded, spec, ds.test.x)
        assert codes.min() >= spec.output_fmt.min_code and codes.max() <= spec.output_fmt.max_code
    if name != "jsc-tiny":  # every layer kind was exercised
        assert kinds >= {"LinearSpec", "ReLUSpec", "LeakyReLUSpecshift", "LeakyReLUSpecmult"}
        assert "RequantiseSpec" in kinds


def test_shipped_checkpoint_8bit_matches_and_keeps_accuracy(ds):
    from models.train import accuracy_of_spec, evaluate, load_float

    model, meta = load_float("jsc-s", "digits16", "leaky_relu")
    folded = fold_batchnorm(model)
    spec = quantise_network(folded, QuantConfig.uniform(8), ds.train.x)
    assert_fake_quant_matches_integer(folded, spec, ds.test.x)
    float_acc, _ = evaluate(folded, ds.test)
    assert abs(float_acc - meta["test_acc"]) < 1e-9
    assert accuracy_of_spec(spec, ds.test) > float_acc - 0.03


def test_spec_structure_and_calibration(ds):
    folded = fold_batchnorm(random_model("jsc-toy", "leaky_relu", 0))
    cfg = QuantConfig.from_dict(
        {
            "default": {
                "width": 6,
                "leaky_impl": "shift",
                "rounding": "nearest",
                "calibration": "max",
            },
            "layers": {"fc2": {"input_width": 4, "input_frac_width": 1, "weight_frac_width": 3}},
        }
    )
    spec = quantise_network(folded, cfg, ds.train.x)
    kinds = [type(ly) for ly in spec.layers]
    assert kinds == [
        LinearSpec,
        LeakyReLUSpec,
        RequantiseSpec,
        LinearSpec,
        LeakyReLUSpec,
        LinearSpec,
    ]
    fc1, _, req, fc2, leaky, _ = spec.layers
    assert req.out_fmt == fc2.in_fmt and (fc2.in_fmt.width, fc2.in_fmt.frac_width) == (4, 1)
    assert fc2.weight_fmt.frac_width == 3 and leaky.shift == 3  # slope 0.125
    # calibration: largest magnitude fits, one more fraction bit would not
    max_in = float(np.abs(ds.train.x).max())
    f = spec.input_fmt.frac_width
    assert max_in < 2 ** (5 - f) and max_in >= 2 ** (4 - f)
    assert (
        calibrated_frac(8, 1.0) == 6
        and calibrated_frac(8, 0.99) == 7
        and calibrated_frac(4, 5) == 0
    )
    assert_fake_quant_matches_integer(folded, spec, ds.test.x)


def test_mse_calibration_clips_outliers_when_that_pays():
    # 1000 x 0.3 and one 4.0 at 4 bits: frac 0 (no clipping) costs 90, frac 2 (4.0 saturates
    # to 1.75) costs 2.5 + 5.06, frac 3 costs 2.5 + 9.77, frac 4 costs 0.16 + 12.69
    v = torch.tensor([0.3] * 1000 + [4.0])
    assert calibrated_frac(4, 4.0) == 0 and mse_frac(4, v) == 2
    assert mse_frac(4, torch.tensor([0.1] * 100 + [10.0])) == -1  # here clipping never pays


def test_per_layer_quantisation_only_touches_that_layer(ds):
    folded = fold_batchnorm(random_model("jsc-toy", "relu", 0))
    spec = quantise_network(folded, QuantConfig.uniform(3), ds.train.x)
    x = torch.from_numpy(ds.val.x)
    with torch.no_grad():
        none = FakeQuantNet(folded, spec, set())(x)
        assert torch.allclose(none, folded(x).double(), atol=1e-5)
        one = FakeQuantNet(folded, spec, {"fc2"})(x)
        assert not torch.allclose(one, none)


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"layers": {"fc9": {"width": 4}}},
         "layers.fc9 is not a layer of this model; allowed: fc1, fc2, fc3"),
        ({"default": {"weight_width": 0}},
         r"default.weight_width must be an integer in \[1, 16\], got 0"),
        ({"default": {"act_width": 17}}, r"act_width must be an integer in \[1, 16\], got 17"),
        ({"layers": {"fc1": {"weight_frac_width": 40}}},
         r"layers.fc1.weight_frac_width must be an integer in \[-16, 32\]"),
        ({"default": {"widht": 4}}, "default.widht is not a key; allowed: width, input_width"),
        ({"default": {"rounding": "even"}}, r"rounding must be one of floor\|nearest"),
        ({"default": {"leaky_impl": "lut"}}, r"leaky_impl must be one of shift\|mult"),
        ({"default": {"slope": 2.0}}, r"slope must be a real number in \(0, 1\)"),
        ({"defaults": {}}, "defaults is not a quantisation section; allowed: default, layers"),
        (
            {"default": {"input_frac_width": 2, "weight_frac_width": 2, "bias_frac_width": 5}},
            "layers.fc1.bias_frac_width must be <= input\\+weight frac width 4, got 5",
        ),
        ({"default": {"width": 1}}, "layers.fc1.act_width must be >= 2 for leaky_relu, got 1"),
    ],
)  # fmt: skip
def test_bad_config_is_one_line_value_error(ds, cfg, match):
    folded = fold_batchnorm(random_model("jsc-toy", "leaky_relu", 0))
    with pytest.raises(ValueError, match=match) as e:
        quantise_network(folded, QuantConfig.from_dict(cfg), ds.train.x)
    assert "\n" not in str(e.value)


def test_toml_config(tmp_path):
    path = tmp_path / "q.toml"
    path.write_text("[quant.default]\nwidth = 4\n[quant.layers.fc2]\nweight_width = 2\n")
    cfg = QuantConfig.from_toml(path)
    assert cfg.default.act_width == 4 and cfg.for_layer("fc2").weight_width == 2
    assert cfg.for_layer("fc2").act_width == 4 and cfg.for_layer("fc1").weight_width == 4
    (tmp_path / "bad.toml").write_text("[default\n")
    with pytest.raises(ValueError, match="config .*bad.toml: "):
        QuantConfig.from_toml(tmp_path / "bad.toml")
    with pytest.raises(ValueError, match="config file not found"):
        QuantConfig.from_toml(tmp_path / "missing.toml")


def test_qat_improves_low_bit_model_and_stays_bit_exact(ds):
    from models.train import evaluate, load_float

    folded = fold_batchnorm(load_float("jsc-toy", "digits16", "relu")[0])
    cfg = QuantConfig.uniform(3)
    before, _ = evaluate(FakeQuantNet(folded, quantise_network(folded, cfg, ds.train.x)), ds.val)
    fq, info = train_qat(folded, cfg, ds, TrainConfig(epochs=2, patience=2), progress=False)
    assert info["epochs_run"] == 2
    assert info["val_acc"] > before + 0.1  # the STE lets gradients through the rounding
    codes = assert_fake_quant_matches_integer(fq.folded, fq.spec, ds.test.x)
    acc = float(np.mean(codes.argmax(axis=1) == ds.test.y))
    assert acc == pytest.approx(info["test_acc"])
    assert fq.spec != quantise_network(folded, cfg, ds.train.x)  # weights moved


def test_relu_spec_for_relu_models(ds):
    folded = fold_batchnorm(random_model("jsc-s", "relu", 0))
    spec = quantise_network(folded, QuantConfig.uniform(8), ds.train.x)
    assert [type(ly) for ly in spec.layers].count(ReLUSpec) == 3


@pytest.mark.parametrize(
    ("impl", "slope", "want"),
    [
        ("shift", 0.36, 2),  # 0.25 is 0.11 away, 0.5 is 0.14: linear distance, not log2 (1)
        ("shift", 0.375, 1),  # halfway between 2^-1 and 2^-2: ties go to the smaller n
        ("shift", 0.01, 7),
        ("mult", 0.3, (8, 77)),  # the finest 8-bit format holding 0.3: s8.8, code 77
        ("mult", 0.125, (9, 64)),  # s8.9: 0.125 * 512 = 64 (s8.10 would need 128)
    ],
)
def test_leaky_slope_uses_qspecs_one_rule(ds, impl, slope, want):
    folded = fold_batchnorm(random_model("jsc-toy", "leaky_relu", 0))
    cfg = QuantConfig.uniform(8, leaky_impl=impl, slope=slope)
    leaky = [
        ly for ly in quantise_network(folded, cfg, ds.train.x).layers if ly.kind == "leaky_relu"
    ]
    assert len(leaky) == 2
    for ly in leaky:
        got = ly.shift if impl == "shift" else (ly.slope_fmt.frac_width, ly.slope_code)
        assert (ly.impl, got) == (impl, want)
    assert_fake_quant_matches_integer(folded, quantise_network(folded, cfg, ds.train.x), ds.val.x)
