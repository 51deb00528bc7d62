"""LeakyReLU generators: a plain combinational core and a streamed, pipelined form."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from qspec.fixed import check_int
from qspec.leaky import LeakyReLUSpec

from ..arith import fixed as hwfixed
from ..arith.adder_tree import const_mul
from ..params import MAX_LANES, MAX_STAGES
from .checked import CheckedComponent


def leaky_relu(
    m: Module, spec: LeakyReLUSpec, x: Value, slope: Value | None = None, name: str = "lrelu"
) -> Signal:
    """Add the LeakyReLU of ``x`` to ``m``; returns the output signal (signed W_out).

    ``slope`` replaces the constant slope code by a runtime signal (mult only).
    """
    in_fmt = spec.in_fmt
    pos = hwfixed.requantise(
        x, in_fmt, spec.out_fmt, spec.rounding, spec.overflow, (0, in_fmt.max_code)
    )
    # Known range of x * slope for x < 0 lets constant slopes skip saturation logic.
    neg_bounds: tuple[int, int] | None = None
    if spec.impl == "shift":
        prod = x  # x * 2**-n: the same bits read with n more fraction bits; no multiplier
        neg_bounds = (in_fmt.min_code, -1)
    else:
        assert spec.slope_fmt is not None
        prod = Signal(signed(spec.neg_format.width), name=f"{name}_prod")
        if slope is not None:
            m.d.comb += prod.eq(x * slope)
        else:  # a constant slope is shift-adds (fewest signed digits), not a multiplier
            m.d.comb += prod.eq(const_mul(m, x, spec.slope_code, f"{name}_cm"))
            ends = (in_fmt.min_code * spec.slope_code, -spec.slope_code)
            neg_bounds = (min(ends), max(ends))
    neg = hwfixed.requantise(
        prod, spec.neg_format, spec.out_fmt, spec.rounding, spec.overflow, neg_bounds
    )
    y = Signal(signed(spec.out_fmt.width), name=f"{name}_y")
    m.d.comb += y.eq(Mux(x[-1], neg, pos))
    return y


def _check_runtime_slope(spec: LeakyReLUSpec, runtime_slope: bool) -> None:
    if runtime_slope and spec.impl != "mult":
        raise ValueError("runtime_slope requires impl='mult' (the shift variant has no multiplier)")


class LeakyReLU(CheckedComponent):
    """Combinational core: ports ``x`` (in, signed W) and ``y`` (out, signed W_out).

    With ``runtime_slope`` the mult variant also has an input ``slope`` (signed
    slope_width) instead of a constant that the synthesiser folds.
    """

    @classmethod
    def check(cls, spec: LeakyReLUSpec, *, runtime_slope: bool = False) -> None:
        _check_runtime_slope(spec, runtime_slope)

    def __init__(self, spec: LeakyReLUSpec, *, runtime_slope: bool = False):
        self.spec, self.runtime_slope = spec, runtime_slope
        members = {
            "x": In(signed(spec.in_fmt.width)),
            "y": Out(signed(spec.out_fmt.width)),
        }
        if runtime_slope:
            assert spec.slope_fmt is not None
            members["slope"] = In(signed(spec.slope_fmt.width))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        slope = self.slope if self.runtime_slope else None
        m.d.comb += self.y.eq(leaky_relu(m, self.spec, self.x, slope))
        return m


class LeakyReLUStream(CheckedComponent):
    """Streamed LeakyReLU: ``lanes`` values per beat, ``stages`` pipeline registers.

    Ports ``i`` and ``o`` follow :mod:`amaranth.lib.stream`. With ``stages == 0``
    valid and ready pass straight through; otherwise each register stage loads
    when it is empty or its successor accepts, so a full pipeline moves one beat
    per cycle and holds its payload while ``o.ready`` is low. Latency is
    ``stages`` cycles, initiation interval 1.
    """

    @classmethod
    def check(
        cls, spec: LeakyReLUSpec, *, lanes: int = 1, stages: int = 0, runtime_slope: bool = False
    ) -> None:
        check_int("lanes", lanes, 1, MAX_LANES)
        check_int("stages", stages, 0, MAX_STAGES)
        _check_runtime_slope(spec, runtime_slope)

    def __init__(
        self, spec: LeakyReLUSpec, *, lanes: int = 1, stages: int = 0, runtime_slope: bool = False
    ):
        self.spec, self.lanes, self.stages, self.runtime_slope = spec, lanes, stages, runtime_slope
        in_layout = data.ArrayLayout(signed(spec.in_fmt.width), lanes)
        out_layout = data.ArrayLayout(signed(spec.out_fmt.width), lanes)
        members = {
            "i": In(stream.Signature(in_layout)),
            "o": Out(stream.Signature(out_layout)),
        }
        if runtime_slope:
            assert spec.slope_fmt is not None
            members["slope"] = In(signed(spec.slope_fmt.width))
        super().__init__(members)

    @property
    def latency(self) -> int:
        return self.stages

    def elaborate(self, platform):
        m = Module()
        slope = self.slope if self.runtime_slope else None
        result = Signal.like(self.o.payload)
        for k in range(self.lanes):
            m.d.comb += result[k].eq(leaky_relu(m, self.spec, self.i.payload[k], slope, f"lane{k}"))

        valid, payload = self.i.valid, result
        ready_in = self.o.ready
        stage_regs = []
        for s in range(self.stages):
            v = Signal(name=f"stage{s}_valid")
            p = Signal.like(self.o.payload, name=f"stage{s}_payload")
            stage_regs.append((v, p, valid, payload))
            valid, payload = v, p
        # Ready flows backwards: a stage can load when it is empty or being emptied.
        for v, p, prev_valid, prev_payload in reversed(stage_regs):
            ready = Signal(name=f"{v.name.removesuffix('_valid')}_ready")
            m.d.comb += ready.eq(~v | ready_in)
            with m.If(ready):
                m.d.sync += [v.eq(prev_valid), p.eq(prev_payload)]
            ready_in = ready
        m.d.comb += [
            self.i.ready.eq(ready_in),
            self.o.valid.eq(valid),
            self.o.payload.eq(payload),
        ]
        return m
