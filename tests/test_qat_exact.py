"""QAT computes qspec's integer semantics exactly: after training steps (weights moved), the
fake-quantised forward's output codes equal ``qspec.integer_forward`` of the exported
``QuantisedNetwork`` bit for bit, on every sample of every split of digits16.

Random configs: widths 2-8, calibrated or explicit (often too fine: wrapping) fraction
widths, floor/nearest, saturate/wrap, a requantise between layers, relu and LeakyReLU
shift/mult (slope, slope width and slope fraction width) on jsc-tiny and jsc-toy.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.data import load_dataset
from models.fold import fold_batchnorm
from models.qconfig import QuantConfig
from models.quant import FakeQuantNet, quantise_network, weight_rules
from models.train import TrainConfig, finetune_spec, load_float, torch_threads
from qspec.fixed import Overflow, Rounding
from qspec.integer_forward import integer_forward, quantise_input
from qspec.leaky import LeakyReLUSpec
from qspec.network import RequantiseSpec

SPLITS = ("train", "val", "test")
MODELS = [("jsc-tiny", "relu"), ("jsc-toy", "relu"), ("jsc-toy", "leaky_relu")]
N_CONFIGS = 6  # per model


@pytest.fixture(scope="module")
def ds():
    return load_dataset("digits16")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """As finetune_spec runs: tiny models on shared cores are much faster on one thread."""
    with torch_threads(1):
        yield


def folded_model(name: str, activation: str):
    net, _ = load_float(name, "digits16", activation)
    return fold_batchnorm(net)


def random_table(rng: random.Random, first: bool, leaky: bool) -> dict:
    t: dict = {k: rng.randint(2, 8) for k in ("weight_width", "bias_width", "act_width")}
    if first or rng.random() < 0.3:  # on a later layer: a requantise at its entry
        t["input_width"] = rng.randint(2, 8)
    for k in ("input", "weight", "bias", "act"):
        if f"{k}_width" in t and rng.random() < 0.4:  # else calibrated
            t[f"{k}_frac_width"] = rng.randint(-1, t[f"{k}_width"] + 3)
    t["rounding"] = rng.choice(["floor", "nearest"])
    t["overflow"] = rng.choice(["saturate", "wrap"])
    t["calibration"] = rng.choice(["mse", "max"])
    if leaky:
        t["leaky_impl"] = rng.choice(["shift", "mult"])
        if rng.random() < 0.5:
            t["slope"] = rng.choice([0.01, 0.1, 0.125, 0.3, 0.7])
        if t["leaky_impl"] == "mult" and rng.random() < 0.5:
            t["slope_width"] = rng.randint(2, 8)
        if t["leaky_impl"] == "mult" and rng.random() < 0.3:
            t["slope_frac_width"] = rng.randint(1, 9)
    return t


def random_spec(rng: random.Random, folded, ds, *, constrained: bool = False, config=False):
    """A valid random QuantConfig's calibrated spec (invalid draws are redrawn); with
    ``constrained`` layers also draw ``sparsity`` and ``max_digits``; ``config``: return
    ``(spec, QuantConfig)``."""
    names = folded.names
    leaky = folded.layers[0].activation == "leaky_relu"
    for _ in range(100):
        layers = {
            n: random_table(rng, i == 0, leaky and i < len(names) - 1) for i, n in enumerate(names)
        }
        if constrained:
            for t in layers.values():
                t["sparsity"] = rng.choice([0.0, 0.25, 0.5, 0.75, 0.9])
                t["max_digits"] = rng.choice([0, 1, 2, 3])
        qc = QuantConfig.from_dict({"layers": layers})
        try:
            spec = quantise_network(folded, qc, ds.train.x)
        except ValueError:  # e.g. bias finer than the product, a slope beyond its format
            continue
        return (spec, qc) if config else spec
    raise AssertionError("no valid random config in 100 draws")


def fake_codes(model: FakeQuantNet, x: np.ndarray) -> np.ndarray:
    """The fake-quantised forward's output as integer codes (asserting they are codes)."""
    with torch.no_grad():
        out = model(torch.from_numpy(x)).numpy()
    scaled = out * 2.0**model.spec.output_fmt.frac_width
    assert np.array_equal(scaled, np.round(scaled)), "fake-quant output is not a code"
    return scaled.astype(np.int64)


def train_steps(model: FakeQuantNet, ds, steps: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    x, y = torch.from_numpy(ds.train.x), torch.from_numpy(ds.train.y)
    for _ in range(steps):
        idx = torch.randint(0, len(y), (128,), generator=gen)
        opt.zero_grad()
        F.cross_entropy(model(x[idx]).float(), y[idx]).backward()
        opt.step()


def check_exact(model: FakeQuantNet, ds) -> None:
    spec = model.to_spec()  # what search exports and synthesises
    for split in SPLITS:
        data = ds.split(split)
        want = np.asarray(integer_forward(spec, quantise_input(spec, data.x)), dtype=np.int64)
        got = fake_codes(model, data.x)
        bad = np.flatnonzero((got != want).any(axis=1))
        assert bad.size == 0, f"{split}: {bad.size} of {len(got)} samples differ, e.g. {bad[0]}"


@pytest.mark.parametrize("name, activation", MODELS)
def test_trained_fake_quant_equals_integer_reference(name, activation, ds):
    folded0 = folded_model(name, activation)
    rng = random.Random(f"{name}-{activation}")
    seen: set = set()
    for i in range(N_CONFIGS):
        folded = fold_batchnorm(load_float(name, "digits16", activation)[0])
        spec = random_spec(rng, folded, ds)
        model = FakeQuantNet(folded, spec, weights="float")
        before = [p.detach().clone() for p in model.parameters()]
        train_steps(model, ds, steps=5, seed=i)
        moved = any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
        assert moved and model.to_spec() != spec  # the codes changed, not only the floats
        check_exact(model, ds)
        for ly in spec.layers:  # what the draws covered
            seen |= {ly.rounding, ly.overflow} if hasattr(ly, "overflow") else set()
            seen |= {type(ly).__name__} | ({ly.impl} if isinstance(ly, LeakyReLUSpec) else set())
    assert folded0.names == folded.names
    assert {Rounding.FLOOR, Rounding.NEAREST, Overflow.SATURATE, Overflow.WRAP} <= seen
    if name == "jsc-toy":
        assert RequantiseSpec.__name__ in seen
    if activation == "leaky_relu":
        assert {"shift", "mult"} <= seen


def check_constraints(spec, qc, rules) -> None:
    """Every weight code within its layer's digit budget, the masked ones (``rules``, of
    the float checkpoint) zero."""
    from qspec.digits import csd_weight

    for ly in spec.linear_layers:
        q, w = qc.for_layer(ly.name), np.array(ly.weight)
        if q.max_digits:
            assert (csd_weight(w) <= q.max_digits).all()
        rule = rules.get(ly.name)
        if rule is not None and rule.mask is not None:
            assert (w[~rule.mask.numpy()] == 0).all()
            assert (~rule.mask).sum() == int(q.sparsity * w.size + 1e-9)


@pytest.mark.parametrize("name, activation", MODELS)
def test_pruned_digit_limited_fake_quant_equals_integer_reference(name, activation, ds):
    """As above with random ``sparsity`` and ``max_digits`` on every layer: the QAT forward
    (masks and the digit table in torch) equals integer_forward of its spec, and the spec
    keeps the masks and budgets after training steps and after finetune_spec."""
    rng = random.Random(f"constrained-{name}-{activation}")
    seen, moved = set(), False
    for i in range(N_CONFIGS):
        folded = fold_batchnorm(load_float(name, "digits16", activation)[0])
        spec, qc = random_spec(rng, folded, ds, constrained=True, config=True)
        rules = weight_rules(folded, qc)  # before training: the masks are the checkpoint's
        check_constraints(spec, qc, rules)
        model = FakeQuantNet(folded, spec, weights="float", rules=rules)
        assert model.to_spec() == spec  # PTQ: the builder and the QAT path agree
        train_steps(model, ds, steps=5, seed=i)  # 1-digit codes may not move in 5 steps
        moved |= model.to_spec() != spec
        check_exact(model, ds)
        check_constraints(model.to_spec(), qc, rules)
        seen |= {(q.sparsity > 0, q.max_digits > 0) for q in qc.layers.values()}
    folded = fold_batchnorm(load_float(name, "digits16", activation)[0])
    spec = quantise_network(folded, qc, ds.train.x)
    rules = weight_rules(folded, qc)
    cfg = TrainConfig(epochs=2, batch_size=256, lr=2e-2, patience=2, seed=1)
    tuned, f2, _ = finetune_spec(folded, spec, ds, cfg, rules=rules)
    check_constraints(tuned, qc, rules)
    for ly in f2.layers:  # the float weights under the mask stayed exactly zero
        rule = rules.get(ly.name)
        if rule is not None and rule.mask is not None:
            assert (ly.linear.weight.detach()[~rule.mask] == 0).all()
    assert moved and (True, True) in seen and len(seen) >= 2


def test_wrap_actually_wraps(ds):
    """A too-fine output format under wrap: the codes wrap, and still agree exactly."""
    folded = folded_model("jsc-toy", "leaky_relu")
    table = {"width": 4, "act_frac_width": 6, "overflow": "wrap", "rounding": "nearest"}
    spec = quantise_network(folded, QuantConfig.from_dict({"default": table}), ds.train.x)
    model = FakeQuantNet(folded, spec, weights="float")
    train_steps(model, ds, steps=3, seed=0)
    check_exact(model, ds)
    sat = quantise_network(
        folded, QuantConfig.from_dict({"default": {**table, "overflow": "saturate"}}), ds.train.x
    )
    x = quantise_input(spec, ds.val.x)
    assert not np.array_equal(integer_forward(spec, x), integer_forward(sat, x))


def test_finetune_keeps_the_best_val_epoch_exactly(ds):
    """finetune_spec's reported val accuracy is the exported spec's integer accuracy, and
    the run is deterministic for a fixed seed (same weights twice)."""
    folded = folded_model("jsc-toy", "leaky_relu")
    qc = QuantConfig.from_dict({"default": {"width": 3, "leaky_impl": "mult"}})
    spec = quantise_network(folded, qc, ds.train.x)
    cfg = TrainConfig(epochs=3, batch_size=256, lr=5e-3, patience=3, seed=7)
    threads = torch.get_num_threads()
    net1, f1, info1 = finetune_spec(folded, spec, ds, cfg)
    assert torch.get_num_threads() == threads  # restored after its one-thread run
    net2, f2, info2 = finetune_spec(folded, spec, ds, cfg)
    assert net1 == net2 and info1 == info2
    s1, s2 = f1.state_dict(), f2.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    from qspec.integer_forward import predict

    acc = float(np.mean(predict(net1, quantise_input(net1, ds.val.x)) == ds.val.y))
    assert acc == info1["best_val_acc"]
    ptq = float(np.mean(predict(spec, quantise_input(spec, ds.val.x)) == ds.val.y))
    assert acc >= ptq  # epoch 0 (the PTQ weights) is a candidate
    assert 0 <= info1["best_epoch"] <= info1["epochs_run"] <= 3
    if info1["best_epoch"] == 0:
        assert net1 == spec
    # the original model is untouched
    assert torch.equal(folded.layers[0].linear.weight, folded_model(*_TOY).layers[0].linear.weight)


_TOY = ("jsc-toy", "leaky_relu")
