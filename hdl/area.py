"""Per-target area coefficients of :mod:`hdl.hwmodel` (pure Python; ``Target.area``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AreaModel:
    """LUT4s beside the carry chains, per target: ``lut4 = sum(coef * feature)``.

    Features (counted by :func:`features`): ``chain_bits`` (bits of all carry chains),
    ``sub_bits`` (bits of chains that subtract), ``inv_bits`` (``~x`` input bits of
    ``adder_tree_nosub``), ``sat_bits`` (output bits behind a saturation mux), ``sat_in``
    (bits the overflow tests read), ``act_bits`` (bits of ReLU/LeakyReLU muxes).
    Carry cells are structural: ``ceil(w / chain_bits_per_cell)`` per chain of ``w`` bits,
    less ``carry_drop`` per chain (iCE40: the top bit's carry-out drives nothing).
    """

    bits_per_cell: int  # carry bits one carry cell covers (ECP5 CCU2C: 2, iCE40 SB_CARRY: 1)
    carry_drop: int  # carry cells per chain Yosys removes (unused final carry)
    chain_bits: float
    sub_bits: float
    inv_bits: float
    sat_bits: float
    sat_in: float
    act_bits: float

    def carries(self, width: int) -> int:
        return max(0, -(-width // self.bits_per_cell) - self.carry_drop)
