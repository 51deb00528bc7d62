"""The per-layer key schema (models.qconfig.SCHEMA): one source for LayerQuant's checks,
the search's key lists and its per-choice checks."""

from __future__ import annotations

import dataclasses

import pytest

from models import qconfig
from models.qconfig import CALIBRATE, SCHEMA, LayerQuant, check_choice, layer_table


def test_key_lists_are_the_documented_ones():
    """Pinned by hand: the search names and samples dimensions in this order."""
    widths = ("input_width", "weight_width", "bias_width", "act_width")
    fracs = ("input_frac_width", "weight_frac_width", "bias_frac_width", "act_frac_width")
    leaky = ("leaky_impl", "slope", "slope_width", "slope_frac_width")
    assert (widths, fracs, leaky) == (qconfig.WIDTH_KEYS, qconfig.FRAC_KEYS, qconfig.LEAKY_KEYS)
    assert qconfig.INPUT_KEYS == ("input_width", "input_frac_width")
    assert (
        "width", *widths, *fracs, "rounding", "overflow", "calibration", "sparsity",
        "max_digits", *leaky
    ) == qconfig.LAYER_KEYS  # fmt: skip
    assert tuple(f.name for f in dataclasses.fields(LayerQuant)) == qconfig.KEYS
    assert "activation" not in qconfig.LAYER_KEYS  # the model's, not a search dimension


SAMPLES = [0, 1, 2, 16, 17, -16, -17, 32, 33, 0.5, 1.5, 1e-9, float("nan"), float("inf")]
SAMPLES += [True, "floor", "nearest", "wrap", "saturate", "mse", "max", "shift", "mult", "x"]


@pytest.mark.parametrize("key", [k for k in qconfig.LAYER_KEYS if k in SCHEMA])
def test_a_choice_is_valid_exactly_when_layerquant_accepts_it(key):
    for v in SAMPLES:
        try:
            LayerQuant(**{key: v})
            want = None
        except ValueError as e:
            want = str(e)
        try:
            got = check_choice(key, v, key)
            assert want is None, (key, v, want)
            assert got == v or (SCHEMA[key].kind == "real" and got == float(v))
        except ValueError as e:
            assert want is not None, (key, v, str(e))
            # the same text; a frac choice may also be "calibrate"
            assert str(e) == want or str(e) == want.replace("], got", f'] or "{CALIBRATE}", got')


def test_frac_choices_may_calibrate_and_width_is_a_shorthand():
    assert check_choice("act_frac_width", CALIBRATE, "p") == CALIBRATE
    with pytest.raises(ValueError, match=r'^p\[1\] must be an integer in \[-16, 32\] or "calib'):
        check_choice("act_frac_width", None, "p[1]")
    with pytest.raises(ValueError, match=r"^p must be an integer in \[2, 16\], got 'calibrate'"):
        check_choice("slope_width", CALIBRATE, "p")
    assert check_choice("width", 4, "p") == 4
    with pytest.raises(ValueError, match=r"^space.default.width must be an integer in \[1, 16\]"):
        check_choice("width", 0, "space.default.width")


def test_layer_table_expands_width_and_drops_calibrate():
    choices = {"width": 4, "act_width": 6, "weight_frac_width": CALIBRATE, "input_frac_width": 2}
    assert layer_table(choices) == {
        "input_width": 4, "weight_width": 4, "bias_width": 4, "act_width": 6,
        "input_frac_width": 2,
    }  # fmt: skip
    assert layer_table(choices, keep_input=False) == {
        "weight_width": 4, "bias_width": 4, "act_width": 6,
    }  # fmt: skip
    assert layer_table({"rounding": "nearest"}) == {"rounding": "nearest"}
