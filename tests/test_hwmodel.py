"""hdl.hwmodel: the graph it walks is the generator's, its carries and LUT-eq match Yosys,
its FFs match the elaborated design, and the registry's coefficients reproduce the committed
calibration (``bench/results/hwmodel.json``) within the goals."""

from __future__ import annotations

import dataclasses
import json
import random
import statistics
import sys

import pytest
from amaranth.hdl import Fragment

from hdl import hwmodel
from hdl.export import export_layer
from hdl.layers.linear import LinearLayer
from hdl.synth import synthesise
from hdl.targets import TARGET_NAMES, TARGETS
from qspec.fixed import FixedFormat
from qspec.network import LinearSpec, QuantisedNetwork, ReLUSpec, group_layers
from tests.conftest import ROOT
from tests.test_linear_sim import random_linear, tails

RESULTS = ROOT / "bench" / "results"
JSC_TINY = QuantisedNetwork.from_json((ROOT / "tests/data/jsc-tiny-4bit.spec.json").read_text())
GOAL_AREA = (3.0, 8.0)  # median, worst abs % error of LUT-eq
GOAL_FMAX = 15.0  # median abs % error of Fmax


def small_layers() -> dict[str, tuple]:
    rng = random.Random(18)
    out = FixedFormat(8, 3)
    return {
        "jsc_tiny": group_layers(JSC_TINY)[0],
        "rand_relu": (random_linear(rng, 6, 4, wbits=6, out_fmt=out), ReLUSpec(out)),
        "rand_wrap": (random_linear(rng, 5, 3, wbits=6, overflow="wrap", rounding="nearest"),),
    }


SMALL = small_layers()


@pytest.mark.parametrize("target", TARGET_NAMES)
@pytest.mark.parametrize("impl", hwmodel.IMPLS)
@pytest.mark.parametrize("name", SMALL)
def test_carries_and_lut_eq_match_yosys(name, impl, target):
    """Carry cells within 1 % (ECP5: 0-2 cells off, or exact), LUT-eq within the goal's worst."""
    layers = SMALL[name]
    mod = export_layer(LinearLayer(layers, impl=impl), layers, impl, 0)
    real = synthesise(mod.verilog, mod.name, target, dsp=False)
    pred = hwmodel.predict_layer(layers, impl, 0, target)
    assert abs(pred.carries - real.carries) <= max(1, 0.01 * real.carries)
    assert abs(pred.lut_eq - real.lut_eq) <= GOAL_AREA[1] / 100 * real.lut_eq + 2


def test_a_wrong_model_is_caught():
    """The carry check fails for a model one structural detail off (one bit per CCU2C)."""
    layers = SMALL["jsc_tiny"]
    mod = export_layer(LinearLayer(layers), layers, "adder_tree", 0)
    real = synthesise(mod.verilog, mod.name, "ecp5", dsp=False)
    em = hwmodel.emitted(layers)
    wrong = dataclasses.replace(TARGETS["ecp5"].area, bits_per_cell=1)
    assert abs(hwmodel.area(em, wrong)[1] - real.carries) > 0.01 * real.carries


def register_bits(comp) -> int:
    """Bits of every signal the elaborated design assigns in the ``sync`` domain."""
    frag = Fragment.get(comp, None)
    sigs, todo = {}, [frag]
    while todo:
        f = todo.pop()
        for st in f.statements.get("sync", []):
            sigs.update({id(s): s for s in st._lhs_signals()})
        todo += [sub for sub, *_ in f.subfragments]
    return sum(len(s) for s in sigs.values())


@pytest.mark.parametrize("stages", [1, 2, 3])
@pytest.mark.parametrize("impl", hwmodel.IMPLS)
@pytest.mark.parametrize("name", SMALL)
def test_ffs_are_the_designs_registers(name, impl, stages):
    layers = SMALL[name]
    pred = hwmodel.predict_layer(layers, impl, stages, "ecp5")
    assert pred.ffs == register_bits(LinearLayer(layers, impl=impl, stages=stages))


@pytest.mark.parametrize("tail", tails(FixedFormat(8, 3)))
def test_ffs_with_every_tail(tail):
    """Requantise, ReLU and both LeakyReLUs: the tail's output width is the registered one."""
    out = FixedFormat(8, 3)
    spec = random_linear(random.Random(tail), 5, 4, wbits=6, out_fmt=out, rounding="nearest")
    layers = (spec, *tails(out)[tail])
    for impl in hwmodel.IMPLS:
        pred = hwmodel.predict_layer(layers, impl, 2, "ecp5")
        assert pred.ffs == register_bits(LinearLayer(layers, impl=impl, stages=2)), impl


def test_stage_of_plugs_in():
    """A placement of one's own: everything in stage 0, the tail in stage 1 (a register on
    every root), then the output register."""
    layers = SMALL["rand_relu"]
    em = hwmodel.emitted(layers)
    pred = hwmodel.predict_emitted(em, 2, "ecp5", stage_of=lambda n: 0, tail_stage=1)
    roots = sum(em.width[n.ident] for n in em.nodes)
    assert pred.ffs == roots + sum(em.tail_widths)
    assert pred.delay_ns < hwmodel.predict_emitted(em, 0, "ecp5").delay_ns


def test_network_is_the_sum_of_its_groups():
    groups = group_layers(JSC_TINY)
    one = hwmodel.predict_layer(groups[0], "adder_tree", 1)
    assert hwmodel.predict_network(JSC_TINY, "adder_tree", 1) == one
    with pytest.raises(ValueError, match="stages"):
        hwmodel.predict_network(JSC_TINY, "adder_tree", [1, 2])


def test_module_is_pure():
    """No Amaranth, no tools: importing hdl.hwmodel alone loads neither."""
    import subprocess

    code = "import sys, hdl.hwmodel; print(any(m.startswith('amaranth') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr


# -- the committed calibration -------------------------------------------------------------

FIT = json.loads((RESULTS / "hwmodel.json").read_text())
SPECS = json.loads((RESULTS / "hwmodel_specs.json").read_text())
_GROUPS: dict = {}


def group(model: str, bits: int, name: str, tail: bool):
    key = (model, bits)
    if key not in _GROUPS:
        _GROUPS[key] = group_layers(QuantisedNetwork.from_dict(SPECS[f"{model}/{bits}bit"]))
    g = next(g for g in _GROUPS[key] if isinstance(g[0], LinearSpec) and g[0].name == name)
    return g if tail else g[:1]


@pytest.mark.parametrize("target", TARGET_NAMES)
def test_registry_holds_the_fitted_coefficients(target):
    t, fit = TARGETS[target], FIT["targets"][target]
    assert {k: getattr(t.area, k) for k in fit["area"]} == fit["area"]
    if fit["delay"]:
        assert {k: getattr(t.delay, k) for k in fit["delay"]} == fit["delay"]


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGET_NAMES)
def test_registry_reproduces_the_area_error(target):
    """The registry's coefficients on the 21 layers x 2 impls of bench/results/linear.json:
    errors within the goals, and no worse than the committed leave-one-out errors."""
    linear = json.loads((RESULTS / "linear.json").read_text())["layers"]
    errs = []
    for key, entry in linear.items():
        model, b, name = key.split("/")
        for impl in hwmodel.IMPLS:
            y = entry[target][impl]
            p = hwmodel.predict_layer(group(model, int(b[:-3]), name, False), impl, 0, target)
            errs.append(abs(100 * (p.lut_eq - y["lut_eq"]) / y["lut_eq"]))
    loo = FIT["targets"][target]["area_error_loo"]["lut_eq"]
    assert len(errs) == loo["n"] == 42
    assert statistics.median(errs) <= min(GOAL_AREA[0], loo["median_abs_pct"] + 0.05)
    assert max(errs) <= min(GOAL_AREA[1], loo["worst_abs_pct"] + 0.05)


@pytest.mark.parametrize("target", TARGET_NAMES)
def test_registry_reproduces_the_fmax_error(target):
    timing = json.loads((RESULTS / "hwmodel_timing.json").read_text())["cases"]
    cases = [c for c in timing.values() if c["target"] == target and c.get("fmax_mhz")]
    if not FIT["targets"][target]["delay"]:
        pytest.skip(f"no {target} placement data fitted")
    errs = []
    for c in cases:
        p = hwmodel.predict_layer(group(c["model"], c["bits"], c["layer"], True), c["impl"],
                                  c["stages"], target)  # fmt: skip
        errs.append(abs(100 * (p.fmax_mhz - c["fmax_mhz"]) / c["fmax_mhz"]))
    loo = FIT["targets"][target]["delay_error_loo"]["fmax"]
    assert statistics.median(errs) <= min(GOAL_FMAX, loo["median_abs_pct"] + 0.5)
