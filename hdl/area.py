"""Per-target area coefficients of :mod:`hdl.hwmodel` (pure Python; ``Target.area``)."""

from __future__ import annotations

from dataclasses import dataclass

# the features hdl.hwmodel.features counts, in AreaModel's field order
LUT_FEATURES = ("chain_bits", "half_bits", "sub_bits", "inv_bits", "sat_bits", "sat_in", "act_bits")


@dataclass(frozen=True)
class AreaModel:
    """Carry cells by structure, LUT4s as ``sum(coef * feature)`` (fitted per target).

    A carry chain of ``w`` bits is ``ceil(w / bits_per_cell) - carry_drop`` cells, and a
    neuron's root chain ``root_drop`` fewer.  LUT features (:func:`hdl.hwmodel.features`):
    ``chain_bits`` (all chain bits), ``half_bits`` (chain bits where an operand is a constant
    or zero extension), ``sub_bits`` (bits of subtracting chains), ``inv_bits`` (``~x`` input
    bits, ``adder_tree_nosub``), ``sat_bits`` (output bits behind a saturation mux),
    ``sat_in`` (bits the overflow tests read), ``act_bits`` (ReLU/LeakyReLU mux bits).
    """

    bits_per_cell: int  # ECP5 CCU2C: 2; iCE40 SB_CARRY: 1
    carry_drop: int  # cells Yosys removes per chain (iCE40: the unused top carry-out)
    root_drop: int
    chain_bits: float = 0.0
    half_bits: float = 0.0
    sub_bits: float = 0.0
    inv_bits: float = 0.0
    sat_bits: float = 0.0
    sat_in: float = 0.0
    act_bits: float = 0.0

    def carries(self, width: int, root: bool = False) -> int:
        cells = -(-width // self.bits_per_cell) - self.carry_drop
        return max(0, cells - (self.root_drop if root else 0))

    def lut4(self, feats: dict[str, int]) -> float:
        return sum(getattr(self, k) * feats.get(k, 0) for k in LUT_FEATURES)
