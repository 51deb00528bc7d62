"""Formal equivalence (Yosys miter + SAT) of two modules with the same ports.

:func:`prove_equivalent`: two combinational modules, for every input.
:func:`prove_sequential_equivalent`: two pipelines of the same latency ``L`` (ports
``x``, ``y``, ``en``, ``clk``, ``rst``), from cycle ``L + 1`` on, for every input sequence;
:func:`prove_pipelined_layer` checks a clock-placed :class:`~hdl.layers.linear.LinearLayer`
that way against the combinational layer behind ``L`` input registers (:class:`Delayed`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .export import to_verilog
from .layers.linear import LinearLayer
from .synth.yosys import run_yosys


@dataclass(frozen=True)
class EquivalenceResult:
    equivalent: bool
    counterexample: str  # the SAT model's table of port values when not equivalent
    log: str


def prove_equivalent(
    gold: str, gold_top: str, gate: str, gate_top: str, *, timeout: float | None = 600
) -> EquivalenceResult:
    """Prove ``gold`` and ``gate`` agree on every input, or find an input where they differ.

    Both modules are flattened into a miter whose single assertion is
    "all outputs equal"; SAT then searches for an input that violates it.
    """
    script = f"""
        read_verilog gold.v
        read_verilog gate.v
        proc
        miter -equiv -flatten -make_assert {gold_top} {gate_top} miter
        hierarchy -top miter
        opt -fast
        sat -prove-asserts -show-inputs -show-outputs miter
    """
    log = run_yosys(script, {"gold.v": gold, "gate.v": gate}, timeout=timeout)
    if "SAT proof finished - no model found: SUCCESS!" in log:
        return EquivalenceResult(True, "", log)
    if "SAT proof finished - model found: FAIL!" in log:
        table = log.split("model found: FAIL!", 1)[1]
        rows = [ln.strip() for ln in table.splitlines() if re.match(r"\s+\\in_", ln)]
        return EquivalenceResult(False, "\n".join(rows), log)
    raise RuntimeError("could not read the SAT verdict from the Yosys log")


def prove_components_equivalent(
    gold: wiring.Component,
    gold_name: str,
    gate: wiring.Component,
    gate_name: str,
    *,
    timeout: float | None = 600,
) -> EquivalenceResult:
    """:func:`prove_equivalent` for two combinational components with the same ports."""
    if gold_name == gate_name:
        raise ValueError(f"gate_name must differ from gold_name, got {gate_name!r} for both")
    return prove_equivalent(
        to_verilog(gold, gold_name),
        gold_name,
        to_verilog(gate, gate_name),
        gate_name,
        timeout=timeout,
    )


def counterexample_inputs(result: EquivalenceResult) -> dict[str, int]:
    """Input port name -> the counterexample's value (an unsigned integer of the port's bits)."""
    values = {}
    for row in result.counterexample.splitlines():
        name, value = row.split()[:2]
        values[name.removeprefix("\\in_")] = int(value)
    return values


# --- pipelines ------------------------------------------------------------------------


@dataclass(frozen=True)
class SequentialResult:
    """The verdict of :func:`prove_sequential_equivalent`; when not equivalent, ``trace``
    holds the witness: per cycle (1-based, index 0 is cycle 1) the inputs, both ``y`` (as
    ``gold_y``/``gate_y``) and ``trigger`` (1 where they differ), as unsigned integers of the
    port's bits, and ``init`` the free initial register values."""

    equivalent: bool
    latency: int
    steps: int
    trace: tuple[dict[str, int], ...]
    init: dict[str, int]
    log: str

    @property
    def failing_cycle(self) -> int | None:
        """The first checked cycle (> ``latency``) whose outputs differ."""
        for t, row in enumerate(self.trace, 1):
            if t > self.latency and row.get("trigger"):
                return t
        return None


_ROW = re.compile(r"^\s*(init|\d+)\s+\\(\S+)\s+\S+\s+\S+\s+([01]+)\s*$")


def _trace(table: str, steps: int) -> tuple[tuple[dict[str, int], ...], dict[str, int]]:
    """The SAT model's table (Time, Signal, Dec, Hex, Bin) -> per-cycle rows and init."""
    rows: list[dict[str, int]] = [{} for _ in range(steps)]
    init: dict[str, int] = {}
    for line in table.splitlines():
        m = _ROW.match(line)
        if not m:
            continue
        time, name, bits = m.groups()
        value = int(bits, 2)
        if time == "init":
            init[name] = value
            continue
        key = {"gold.y": "gold_y", "gate.y": "gate_y"}.get(name, name.removeprefix("in_"))
        rows[int(time) - 1][key] = value
    return tuple(rows), init


def prove_sequential_equivalent(
    gold: str,
    gold_top: str,
    gate: str,
    gate_top: str,
    *,
    latency: int,
    stall_cycles: int = 0,
    timeout: float | None = 600,
) -> SequentialResult:
    """Prove two pipelines of ``latency`` cycles agree at every output from cycle
    ``latency + 1`` on, or find an input sequence where they do not.

    Ports: ``x``, ``y`` and ``en`` (registers load while high), ``clk``, ``rst`` (held low:
    reset is the stream's business).  Every register starts at a *free* value (its init
    attribute removed), so the check covers every state a running pipeline can be in:
    after ``latency`` enabled cycles a feed-forward pipeline's state is a function of its
    last ``latency`` inputs, and the first checked cycle's outputs are equal for every
    such state exactly when they are equal in every later cycle.  ``stall_cycles=0``:
    ``en`` tied high, one checked cycle, a complete proof.  ``stall_cycles=K``: ``en`` high
    for the first ``latency`` cycles (to fill the pipeline from the free state), then free
    for ``K`` more, all checked: a bounded proof that stalls hold both pipelines alike.
    """
    if latency < 1:
        raise ValueError(f"latency must be >= 1 (a pipeline), got {latency!r}")
    steps = latency + max(1, stall_cycles)
    fill = " ".join(f"-set-at {t} in_en 1" for t in range(1, latency + 1))
    en = "-set in_en 1" if stall_cycles == 0 else fill
    script = f"""
        read_verilog gold.v
        read_verilog gate.v
        proc
        miter -equiv -flatten -make_assert {gold_top} {gate_top} miter
        hierarchy -top miter
        opt -fast
        setattr -unset init
        sat -seq {steps} -prove-asserts -prove-skip {latency} -set in_rst 0 {en} -show-inputs -show-outputs -show gold.y -show gate.y miter
    """  # noqa: E501  (one Yosys command)
    log = run_yosys(script, {"gold.v": gold, "gate.v": gate}, timeout=timeout)
    if "SAT proof finished - no model found: SUCCESS!" in log:
        return SequentialResult(True, latency, steps, (), {}, log)
    if "SAT proof finished - model found: FAIL!" in log:
        trace, init = _trace(log.split("model found: FAIL!", 1)[1], steps)
        return SequentialResult(False, latency, steps, trace, init, log)
    raise RuntimeError("could not read the SAT verdict from the Yosys log")


class Delayed(wiring.Component):
    """``layer`` (combinational: ports ``x``, ``y``) behind ``latency`` registers on its
    input that load while ``en`` is high: the plainest pipeline of that latency, the gold
    model of a placed one (registers anywhere else compute the same, cycle for cycle)."""

    def __init__(self, layer: wiring.Component, latency: int):
        members = layer.signature.members
        if "en" in members:
            raise ValueError("layer must be combinational (no en port)")
        self.layer, self.latency = layer, latency
        super().__init__({"x": In(members["x"].shape), "y": Out(members["y"].shape), "en": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.layer = self.layer
        x = self.x
        for s in range(self.latency):
            r = Signal.like(self.x, name=f"x_d{s + 1}")
            with m.If(self.en):
                m.d.sync += r.eq(x)
            x = r
        m.d.comb += [self.layer.x.eq(x), self.y.eq(self.layer.y)]
        return m


def prove_pipelined_layer(
    layers,
    *,
    impl: str = "adder_tree",
    clock_mhz: float,
    target: str = "ecp5",
    gold_impl: str = "mul",
    stall_cycles: int = 0,
    gate: wiring.Component | None = None,
    timeout: float | None = 600,
) -> SequentialResult:
    """``LinearLayer(layers, impl=, clock_mhz=, target=)`` (or ``gate``, a substitute with the
    same ports and ``latency``) against ``Delayed(LinearLayer(layers, impl=gold_impl),
    latency)``: :func:`prove_sequential_equivalent` at the latency the placement claims."""
    if gate is None:
        gate = LinearLayer(layers, impl=impl, clock_mhz=clock_mhz, target=target)
    gold = Delayed(LinearLayer(layers, impl=gold_impl), gate.latency)
    return prove_sequential_equivalent(
        to_verilog(gold, "gold"),
        "gold",
        to_verilog(gate, "gate"),
        "gate",
        latency=gate.latency,
        stall_cycles=stall_cycles,
        timeout=timeout,
    )
