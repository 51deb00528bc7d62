"""Formal equivalence of two combinational modules with the same ports (Yosys miter + SAT)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from amaranth.lib import wiring

from .export import to_verilog
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
