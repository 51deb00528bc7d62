"""hdl.pipeline: clock-driven register placement, checked against the delay model itself
and simulated bit-exact (random enable) against the integer reference."""

import random

import pytest

from hdl.hwmodel import chain_bits, emitted_cached, register_bits, stage_delays
from hdl.layers.linear import LinearLayer
from hdl.pipeline import METHODS, place
from hdl.targets import target as get_target
from qspec.fixed import FixedFormat
from qspec.network import ReLUSpec
from tests.test_linear_sim import random_linear, reference, simulate_pipelined, vectors

DELAY = get_target("ecp5").delay


def layer(seed, overflow="saturate", n_in=8, n_out=4):
    rng = random.Random(seed)
    spec = random_linear(
        rng, n_in, n_out, wbits=8, out_fmt=FixedFormat(7, 2), rounding="nearest", overflow=overflow
    )
    return (spec, ReLUSpec(spec.out_fmt))


def stage_lists(p, em):
    return stage_delays(em, p.stage_of, p.tail_stage, DELAY)


@pytest.mark.parametrize("mhz", [50, 120, 200, 220])
@pytest.mark.parametrize("impl", ["adder_tree", "adder_tree_nosub"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_placement_meets_the_period_in_the_fewest_stages(seed, impl, mhz):
    layers = layer(seed)
    em = emitted_cached(layers, impl)
    p = place(layers, impl, mhz)
    assert p.method in METHODS
    budget = DELAY.budget_ns(mhz, chain_bits(em))
    # every stage's path within the budget (the model's figure is the placement's own)
    assert max(stage_lists(p, em)) <= budget + 1e-9
    reg = DELAY.reg_for(chain_bits(em))
    assert p.met and p.delay_ns == pytest.approx(reg + max(stage_lists(p, em)))
    assert p.delay_ns <= DELAY.period_ns(mhz) * (1 - DELAY.uncertainty) + 1e-9
    assert p.ffs == register_bits(em, p.stage_of, p.tail_stage, p.latency)
    assert sum(p.boundary_bits(em)) == p.ffs
    # operands never come from a later stage
    for n in em.reached:
        for a in getattr(n, "args", ())[:2]:
            if hasattr(a, "ident") and a.op != "const":
                assert p.stage_of(a) <= p.stage_of(n)


def test_no_placement_with_one_stage_fewer_meets_the_clock():
    """Exhaustive over every monotone stage assignment of a small layer's adders."""
    import itertools

    from qspec.fixed import FixedFormat as F
    from qspec.network import LinearSpec, min_accumulator_format

    wf, bf, xf = F(6, 3), F(4, 1), F(6, 2)
    acc = min_accumulator_format(xf, wf, bf, 3)
    spec = LinearSpec("fc", [[27, -19, 13]], [3], xf, wf, bf, acc, F(8, 2), "floor", "saturate")
    em = emitted_cached((spec,), "adder_tree")
    adders = [n for n in em.reached if n.op != "in"]
    assert 4 <= len(adders) <= 8
    for mhz in (150, 200, 250):
        p = place((spec,), "adder_tree", mhz)
        assert p.met and p.latency >= 2
        short = p.latency - 1  # stages 0..short-1, the tail in the last
        budget = DELAY.budget_ns(mhz, chain_bits(em))
        for combo in itertools.product(range(short), repeat=len(adders)):
            st = dict(zip((n.ident for n in adders), combo, strict=True))
            of = lambda n, st=st: st.get(n.ident, 0)  # noqa: E731
            if any(of(a) > of(n) for n in adders for a in n.args[:2] if hasattr(a, "op")):
                continue  # an operand from a later stage: not a pipeline
            assert max(stage_delays(em, of, short - 1, DELAY)) > budget + 1e-9


def test_a_faster_clock_never_needs_fewer_stages():
    layers = layer(3)
    lats = [place(layers, "adder_tree", f).latency for f in (25, 50, 100, 150, 200, 250)]
    assert lats == sorted(lats) and lats[0] == 1 and lats[-1] > 2


def test_a_slow_clock_is_one_stage_and_an_impossible_one_is_reported():
    layers = layer(4)
    assert place(layers, "adder_tree", 10).latency == 1
    p = place(layers, "adder_tree", 1500)  # a single adder is slower than 0.67 ns
    assert not p.met and p.delay_ns > DELAY.period_ns(1500)


@pytest.mark.parametrize("mhz", [400, 1500])
def test_an_impossible_clock_gets_the_fastest_placement_with_the_fewest_ffs(mhz):
    """No stage can be shorter than its slowest single node: the placement is as fast as
    that, and no faster clock's (one adder a stage) placement has fewer FFs or stages."""
    layers = layer(5)
    em = emitted_cached(layers, "adder_tree")
    p = place(layers, "adder_tree", mhz)
    slowest = max(*(DELAY.node(n) for n in em.reached), *(DELAY.tail_of(s) for s in em.tail_sat))
    reg = DELAY.reg_for(chain_bits(em))
    assert not p.met and p.delay_ns == pytest.approx(reg + slowest)
    # the fastest clock the model meets: a budget of exactly the slowest node
    cap = place(layers, "adder_tree", 1000.0 * (1 - DELAY.uncertainty) / (reg + slowest) - 1e-6)
    assert cap.met and (cap.latency, cap.ffs) == (p.latency, p.ffs)


@pytest.mark.parametrize("mhz", [100, 200])
@pytest.mark.parametrize("impl", ["adder_tree", "adder_tree_nosub"])
@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_clocked_layer_is_bit_exact_under_random_enable(overflow, impl, mhz):
    layers = layer(5, overflow, n_in=6, n_out=3)
    dut = LinearLayer(layers, impl=impl, clock_mhz=mhz)
    assert dut.latency == dut.placement.latency == dut.stages
    xs = vectors(layers[0].in_fmt, 6, 60, seed=mhz)
    pairs, held = simulate_pipelined(dut, xs, seed=mhz)
    assert len(pairs) == len(xs) - dut.latency + 1
    assert [y for _, y in pairs] == reference(list(layers), [x for x, _ in pairs])
    assert held and all(y == prev for prev, y in held if prev is not None)


def test_module_name_carries_the_clock():
    layers = layer(6)
    a = LinearLayer(layers, clock_mhz=200).module_name()
    b = LinearLayer(layers, clock_mhz=187.5).module_name()
    c = LinearLayer(layers, stages=LinearLayer(layers, clock_mhz=200).stages).module_name()
    assert "c200_" in a and "c187d5_" in b and len({a, b, c}) == 3


def test_module_names_carry_the_registers(monkeypatch):
    """Another delay model at the same clock and stage count moves registers: the layer's
    and the network's module names change with them (one name, one Verilog)."""
    import dataclasses

    import hdl.pipeline
    from hdl.export import export_network
    from tests.test_network_sim import load_net

    t = get_target("ecp5")
    layers, net = layer(0), load_net("jsc-tiny")

    def build(bit_scale: float):
        """The layer at 200 MHz and the network at 80, with carry bits ``bit_scale`` slower."""
        slow = dataclasses.replace(
            t, delay=dataclasses.replace(t.delay, bit=bit_scale * t.delay.bit)
        )
        monkeypatch.setattr(hdl.pipeline, "get_target", lambda name: slow)
        return LinearLayer(layers, clock_mhz=200), export_network(net, clock_mhz=80)

    (a, top_a), (b, top_b) = build(1.0), build(3.0)
    assert a.stages == b.stages and a.placement.registers != b.placement.registers
    assert a.module_name() != b.module_name()
    assert a.module_name() == build(1.0)[0].module_name()  # and it is deterministic
    top_b = build(1.5)[1]
    assert top_a.latency == top_b.latency and top_a.verilog != top_b.verilog
    assert top_a.name != top_b.name


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"clock_mhz": 0}, "clock_mhz must be in"),
        ({"clock_mhz": "fast"}, "clock_mhz must be a number"),
        ({"clock_mhz": True}, "clock_mhz must be a number"),
        ({"clock_mhz": 200, "stages": 2}, "stages must be 0 with clock_mhz"),
        ({"clock_mhz": 200, "impl": "mul"}, "clock_mhz needs impl"),
        ({"clock_mhz": 200, "target": "xc7"}, "target must be one of"),
    ],
)
def test_bad_clock_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LinearLayer(layer(7), **kwargs)
