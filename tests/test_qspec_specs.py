"""Every spec is normalised and validated however it is built (issue #7, defects 1 and 2).

Defect 1: string modes passed through ``dataclasses.replace`` used to build floor+wrap
hardware while the spec computed nearest+saturate.  Defect 2: ``from_dict`` accepted
out-of-range values and raised KeyError/TypeError tracebacks for missing/mistyped keys.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from hdl.pysim import simulate_leaky
from qspec.fixed import FixedFormat, Overflow, Rounding
from qspec.leaky import LeakyReLUSpec
from qspec.network import (
    LinearSpec,
    QuantisedNetwork,
    ReLUSpec,
    RequantiseSpec,
    layer_from_dict,
    min_accumulator_format,
)
from tests.fraction_model import model_leaky, safe_id

F8 = FixedFormat(8, 4)
S, M = LeakyReLUSpec.shift_variant, LeakyReLUSpec.mult_variant


def _linear(**kw) -> LinearSpec:
    acc = min_accumulator_format(F8, F8, FixedFormat(8, 8), 2)
    base = dict(name="fc1", weight=[[1, 2]], bias=[3], in_fmt=F8, weight_fmt=F8,
                bias_fmt=FixedFormat(8, 8), acc_fmt=acc, out_fmt=F8)  # fmt: skip
    return LinearSpec(**{**base, **kw})


def _network() -> QuantisedNetwork:
    lin1 = _linear(weight=[[1, 2], [3, -4], [5, 6]], bias=[3, 4, 5])
    lin2 = _linear(name="fc2", weight=[[1, -1, 2]], acc_fmt=min_accumulator_format(
        F8, F8, FixedFormat(8, 8), 3))  # fmt: skip
    return QuantisedNetwork(
        F8,
        [lin1, M(8, 4, 0.3, slope_width=8, slope_frac_width=4), ReLUSpec(F8),
         RequantiseSpec(F8, F8, "nearest", "wrap"), S(8, 4, 2), lin2],
        1,
        "net",
    )  # fmt: skip


# --- defect 1 ----------------------------------------------------------------------------


@pytest.mark.parametrize("rounding", ["floor", "nearest"])
@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
@pytest.mark.parametrize(
    "base",
    [
        S(6, 2, 2),
        M(6, 2, 0.3, slope_width=5, slope_frac_width=4),
        M(6, 2, 1.75, slope_width=6, slope_frac_width=3, out_width=4, out_frac_width=0),
    ],  # fmt: skip
)
def test_hardware_from_replace_with_string_modes_matches_the_spec(base, rounding, overflow):
    """Exhaustive over the 64 input codes: the Amaranth core equals the exact model."""
    spec = dataclasses.replace(base, rounding=rounding, overflow=overflow)
    assert spec.rounding is Rounding(rounding) and spec.overflow is Overflow(overflow)
    xs = list(range(-32, 32))
    want = [model_leaky(spec, x) for x in xs]
    assert [spec.forward(x) for x in xs] == want
    assert simulate_leaky(spec, xs) == want


@pytest.mark.parametrize(
    "make",
    [
        lambda: dataclasses.replace(_linear(), rounding="nearest", overflow="wrap"),
        lambda: RequantiseSpec(F8, F8, "nearest", "wrap"),
        lambda: dataclasses.replace(RequantiseSpec(F8, F8), rounding="nearest", overflow="wrap"),
        lambda: dataclasses.replace(S(8, 4, 1), rounding="nearest", overflow="wrap"),
    ],
)
def test_every_spec_normalises_string_modes(make):
    spec = make()
    assert spec.rounding is Rounding.NEAREST and spec.overflow is Overflow.WRAP


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: dataclasses.replace(_linear(), rounding="even"), "rounding must be one of"),
        (lambda: dataclasses.replace(_linear(), weight=[[1, 999]]), r"weight\[0\]\[1\] must be"),
        (lambda: dataclasses.replace(_linear(), name=3), "name must be an identifier"),
        (lambda: dataclasses.replace(_linear(), name="fc 1"), r"name must be an identifier \("),
        (lambda: ReLUSpec((8, 4)), "fmt must be a FixedFormat"),
        (lambda: RequantiseSpec(F8, "s8.4"), "out_fmt must be a FixedFormat"),
        (lambda: RequantiseSpec(F8, F8, overflow="clip"), "overflow must be one of"),
        (lambda: dataclasses.replace(_network(), num_classes=0), r"num_classes must be in \[1,"),
        (lambda: dataclasses.replace(_network(), name=None), "name must be a name"),
        (lambda: dataclasses.replace(_network(), name="a/b"), r"name must be a name \("),
        (lambda: dataclasses.replace(_network(), layers=[F8]), r"layers\[0\] must be a layer"),
        (lambda: dataclasses.replace(_network(), layers=[]), "at least one linear layer"),
        (lambda: dataclasses.replace(_network(), input_fmt=8), "input_fmt must be a FixedFormat"),
        (
            lambda: QuantisedNetwork(F8, [_linear(), _linear(name="fc2")], 1),
            r"layers\[1\].in_features must be 1 \(the previous linear layer's out_features\)",
        ),
    ],
    ids=safe_id,
)
def test_constructors_and_replace_validate(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --- defect 2: from_dict ------------------------------------------------------------------


def test_round_trip_of_every_layer_kind():
    net = _network()
    d = net.to_dict()
    assert [ly["kind"] for ly in d["layers"]] == [
        "linear", "leaky_relu", "relu", "requantise", "leaky_relu", "linear"
    ]  # fmt: skip
    back = QuantisedNetwork.from_json(json.dumps(d))
    assert back == net and back.to_dict() == d
    for layer in net.layers:
        assert layer_from_dict(layer.to_dict()) == layer
        assert type(layer).from_dict(layer.to_dict()) == layer
    leaky = net.layers[1]
    assert LeakyReLUSpec.from_dict(leaky.to_dict()).slope_requested == 0.3


def _mutated(path: list, value) -> dict:
    """The network's dict with the entry at ``path`` replaced (``...`` deletes it)."""
    d = _network().to_dict()
    node = d
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


BAD = [
    (["layers", 1, "slope_code"], 1000,
     r"layers\[1\].slope_code must be in \[-128, 127\] for slope format s8.4, got 1000"),
    (["layers", 4, "shift"], 40, r"layers\[4\].shift must be in \[0, 8\], got 40"),
    (["layers", 4, "impl"], "Shift", r"layers\[4\].impl must be one of shift\|mult, got 'Shift'"),
    (["layers", 4, "shift"], ..., r"layers\[4\].shift is missing"),
    (["layers", 1, "slope_fmt"], ..., r"layers\[1\].slope_fmt is missing"),
    (["layers", 1, "slope_fmt"], None, r"layers\[1\].slope_fmt must be a format object"),
    (["layers", 1, "slope_fmt", "width"], 40,
     r"layers\[1\].slope_fmt must be signed with width in \[2, 32\], got s40.4"),
    (["layers", 1, "slope_code"], 2.0, r"layers\[1\].slope_code must be in"),
    (["layers", 1, "slope_requested"], "0.3", r"layers\[1\].slope_requested must be a real"),
    (["layers", 4, "slope_code"], 5, r"layers\[4\].slope_code must be 0 for impl='shift'"),
    (["layers", 1, "rounding"], "half", r"layers\[1\].rounding must be one of floor\|nearest"),
    (["layers", 1, "in_fmt", "signed"], False, r"layers\[1\].in_fmt must be signed"),
    (["layers", 0, "weight"], ..., r"layers\[0\].weight is missing"),
    (["layers", 0, "weight"], 5, r"layers\[0\].weight must be a list of rows, got 5"),
    (["layers", 0, "weight"], [[1, 2], [3]], r"layers\[0\].weight must be a non-empty rect"),
    (["layers", 0, "weight", 1, 0], "3", r"layers\[0\].weight\[1\]\[0\] must be an integer"),
    (["layers", 0, "weight", 1, 0], 300,
     r"layers\[0\].weight\[1\]\[0\] must be in \[-128, 127\] for weight format s8.4, got 300"),
    (["layers", 0, "bias", 2], None, r"layers\[0\].bias\[2\] must be an integer"),
    (["layers", 0, "acc_fmt", "width"], 12, r"layers\[0\].acc_fmt must hold \["),
    (["layers", 0, "acc_fmt", "frac_width"], "8", r"layers\[0\].acc_fmt.frac_width must be an in"),
    (["layers", 0, "acc_fmt"], [18, 8], r"layers\[0\].acc_fmt must be a format object"),
    (["layers", 0, "name"], 7, r"layers\[0\].name must be an identifier"),
    (["layers", 0, "name"], "fc\n1", r"layers\[0\].name must be an identifier \(\[A-Za-z_\]"),
    (["layers", 0, "in_fmt", "widht"], 8, r"layers\[0\].in_fmt.widht is not a known key"),
    (["layers", 0, "overflow"], ..., r"layers\[0\].overflow is missing"),
    (["layers", 0, "kind"], "conv", r"layers\[0\].kind must be one of linear\|relu"),
    (["layers", 0, "kind"], ..., r"layers\[0\].kind is missing"),
    (["layers", 2, "fmt"], ..., r"layers\[2\].fmt is missing"),
    (["layers", 2, "extra"], 1, r"layers\[2\].extra is not a known key"),
    (["layers", 3, "in_fmt", "width"], 0, r"layers\[3\].in_fmt.width must be in \[1, 128\]"),
    (["layers", 3, "in_fmt", "width"], True, r"layers\[3\].in_fmt.width must be an integer"),
    (["layers", 3, "in_fmt", "signed"], "yes", r"layers\[3\].in_fmt.signed must be true or"),
    (["layers", 3, "overflow"], "clip", r"layers\[3\].overflow must be one of saturate\|wrap"),
    (["layers", 5], "relu", r"layers\[5\] must be an object, got a string"),
    (["layers", 2, "fmt", "frac_width"], 3, r"layers\[2\].in_fmt must be s8.4 \(the previous out"),
    (["layers"], {}, r"layers must be a list"),
    (["layers"], ..., r"layers is missing"),
    (["num_classes"], 2, r"num_classes must equal the last layer's out_features 1"),
    (["num_classes"], "1", r"num_classes must be an integer"),
    (["input_fmt"], ..., r"input_fmt is missing"),
    (["name"], 5, r"name must be a name"),
    (["name"], "jsc toy", r"name must be a name \(.*, got 'jsc toy'"),
    (["version"], 2, r"version must be 1, got 2"),
    (["version"], True, r"version must be 1, got True"),
    (["verison"], 1, r"verison is not a known key"),
]  # fmt: skip


@pytest.mark.parametrize("path, value, message", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_from_dict_names_the_key_path(path, value, message):
    d = _mutated(path, value)
    with pytest.raises(ValueError, match=message) as info:
        QuantisedNetwork.from_dict(d)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=message):  # the same through JSON
        QuantisedNetwork.from_json(json.dumps(d))


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "spec is not valid JSON: Expecting value: line 1 column 1"),
        ('{"version": 1,', "spec is not valid JSON"),
        (b"\xff\xfe{", "spec is not valid JSON"),
        ("[1, 2]", "spec must be a JSON object, got a list"),
        ("null", "spec must be a JSON object, got null"),
    ],
    ids=safe_id,
)
def test_from_json_invalid_text_is_one_line_value_error(text, message):
    with pytest.raises(ValueError, match=message) as info:
        QuantisedNetwork.from_json(text)
    assert "\n" not in str(info.value)


def test_leaky_from_dict_validates_like_the_constructor():
    d = S(8, 4, 2).to_dict()
    assert LeakyReLUSpec.from_dict(d) == S(8, 4, 2)
    with pytest.raises(ValueError, match=r"^shift must be in \[0, 8\], got 40$"):
        LeakyReLUSpec.from_dict({**d, "shift": 40})
    with pytest.raises(ValueError, match=r"^kind must be 'leaky_relu', got 'relu'$"):
        LeakyReLUSpec.from_dict({**d, "kind": "relu"})
    with pytest.raises(ValueError, match=r"^x.slope_fmt is missing$"):
        LeakyReLUSpec.from_dict({**d, "impl": "mult"}, "x")


def test_layer_from_dict_without_a_path_names_bare_keys():
    """At the top level the key itself is the path (no stray prefix)."""
    lin = _linear().to_dict()
    for parse in (LinearSpec.from_dict, layer_from_dict):
        with pytest.raises(ValueError, match=r"^weight\[0\]\[1\] must be in \[-128, 127\]"):
            parse({**lin, "weight": [[1, 999]]})
        with pytest.raises(ValueError, match=r"^bias is missing$"):
            parse({k: v for k, v in lin.items() if k != "bias"})
    req = RequantiseSpec(F8, F8).to_dict()
    with pytest.raises(ValueError, match=r"^overflow must be one of saturate\|wrap, got 'x'$"):
        RequantiseSpec.from_dict({**req, "overflow": "x"})
    with pytest.raises(ValueError, match=r"^fmt.width must be in \[1, 128\], got 0$"):
        ReLUSpec.from_dict({"kind": "relu", "fmt": {"width": 0, "frac_width": 0}})
    with pytest.raises(ValueError, match=r"^kind must be one of linear\|relu"):
        layer_from_dict({"kind": 3})
    with pytest.raises(ValueError, match=r"^in_fmt must be a FixedFormat, got 's8.4'$"):
        RequantiseSpec("s8.4", F8)


def test_network_dict_defaults_and_json_text():
    net = _network()
    d = net.to_dict()
    del d["name"]
    assert QuantisedNetwork.from_dict(d).name == ""
    assert net.to_json() == json.dumps(net.to_dict(), indent=1)
    assert ReLUSpec.from_dict({"fmt": {"width": 8, "frac_width": 4}}) == ReLUSpec(F8)  # kind opt.


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: _linear(bias=5), r"^bias must be a list of integer codes, got 5$"),
        (lambda: _linear(weight=[]), r"^weight must be a non-empty rectangular matrix$"),
        (lambda: _linear(weight=[[]]), r"^weight must be a non-empty rectangular matrix$"),
        (lambda: _linear(bias=[300]), r"^bias\[0\] must be in \[-128, 127\] for bias format s8.8"),
        (
            lambda: _linear(acc_fmt=FixedFormat(18, 8, signed=False)),
            r"^acc_fmt must hold \[-32640, 32895\] with frac_width 8 \(at least s17.8\), got u18",
        ),
        (lambda: dataclasses.replace(_network(), layers=5), r"^layers must be a list of layer"),
        (
            lambda: dataclasses.replace(_network(), layers=[ReLUSpec(F8)]),
            r"^layers must contain at least one linear layer$",
        ),
    ],
    ids=safe_id,
)
def test_exact_constructor_messages(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_constructor_normalises_codes_and_counts():
    import numpy as np

    lin = _linear(weight=np.array([[1, 2]]), bias=[np.int64(3)])
    assert lin.weight == ((1, 2),) and lin.bias == (3,)
    assert type(lin.weight[0][0]) is int and type(lin.bias[0]) is int
    assert hash(lin) == hash(_linear())
    net = dataclasses.replace(_network(), num_classes=np.int64(1))
    assert type(net.num_classes) is int and net == _network()
