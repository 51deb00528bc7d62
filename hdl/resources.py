"""``Resources``: what synthesis measured for one design (plain data, no tool machinery).

The search imports this without pulling in Yosys or nextpnr.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .targets import TARGETS


@dataclass(frozen=True)
class Resources:
    """Resource use of one design on one target.

    ``a + b`` composes two modules as pipelined stages in series: counts add,
    depth is the larger, Fmax the smaller, latencies add and II is the larger.
    """

    target: str
    lut4: int = 0  # LUT4 cells only; the cost a design occupies is :attr:`lut_eq`
    ffs: int = 0
    carries: int = 0
    dsps: int = 0
    brams: int = 0
    cells: int = 0
    depth: int | None = None  # Yosys ltp -noff: cells on the longest combinational path
    fmax_mhz: float | None = None  # nextpnr, registered wrapper; None when not measured
    latency: int | None = None  # cycles, from the generator/manifest
    initiation_interval: int | None = None
    cell_types: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    cached: bool = field(default=False, compare=False)

    def __add__(self, other: Resources) -> Resources:
        if not isinstance(other, Resources):
            return NotImplemented
        if other.target != self.target:
            raise ValueError(f"cannot add resources of targets {self.target} and {other.target}")

        def opt(f, a, b):
            return b if a is None else a if b is None else f(a, b)

        types = dict(self.cell_types)
        for k, v in other.cell_types.items():
            types[k] = types.get(k, 0) + v
        return Resources(
            self.target,
            *(
                getattr(self, n) + getattr(other, n)
                for n in ("lut4", "ffs", "carries", "dsps", "brams", "cells")
            ),
            depth=opt(max, self.depth, other.depth),
            fmax_mhz=opt(min, self.fmax_mhz, other.fmax_mhz),
            latency=opt(int.__add__, self.latency, other.latency),
            initiation_interval=opt(max, self.initiation_interval, other.initiation_interval),
            cell_types=dict(sorted(types.items())),
            notes=tuple(dict.fromkeys(self.notes + other.notes)),
            cached=self.cached and other.cached,
        )

    def __radd__(self, other):  # lets sum() start from 0
        return self if other == 0 else NotImplemented

    def to_dict(self) -> dict[str, Any]:
        """The fields, plus the derived ``lut_eq`` for readers of the JSON."""
        d = dataclasses.asdict(self)
        d["notes"] = list(self.notes)
        d["lut_eq"] = self.lut_eq
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Resources:
        """Reads :meth:`to_dict`, and the records of earlier versions (``luts`` = LUT4)."""
        names = {f.name for f in dataclasses.fields(cls)}
        if "lut4" not in d and "luts" in d:
            d = {**d, "lut4": d["luts"]}
        d = {k: v for k, v in d.items() if k in names}
        d["notes"] = tuple(d.get("notes", ()))
        return cls(**d)

    @property
    def lut_eq(self) -> int:
        """The slice cells a design occupies, so carry-heavy and LUT-heavy designs compare.

        ECP5: LUT4 + 2 x CCU2C; iCE40: LUT4 (its SB_CARRY sits beside the LUT it uses);
        the weight is :attr:`hdl.targets.Target.carry_lut_weight`.
        """
        t = TARGETS.get(self.target)
        return self.lut4 + (t.carry_lut_weight if t else 0) * self.carries
