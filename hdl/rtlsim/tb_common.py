"""Helpers shared by the cocotb testbenches (``tb_*.py``)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_REPORTED = 8  # error messages kept per run (the count of failures is always exact)


@dataclass
class Trace:
    """What a streaming testbench saw: output beats, handshake cycles, first errors."""

    outputs: list[list[int]] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)  # a network's class index (argmax)
    in_cycles: list[int] = field(default_factory=list)
    out_cycles: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def error(self, msg: str) -> None:
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(msg)


def phase_prob(seed: int, choices: tuple[float, ...], phase: int) -> Callable[[int], float]:
    """A probability that changes every ``phase`` cycles: bursts, stalls and full rate."""
    table: dict[int, float] = {}
    rng = random.Random(seed)

    def p(cycle: int) -> float:
        ph = cycle // phase
        if ph not in table:
            table[ph] = rng.choice(choices)
        return table[ph]

    return p


def pack(values: list[int], width: int) -> int:
    """Two's-complement codes packed LSB first, ``width`` bits each (the payload layout)."""
    mask = (1 << width) - 1
    return sum((v & mask) << (k * width) for k, v in enumerate(values))


def unpack(word: int, width: int, n: int) -> list[int]:
    """The ``n`` signed ``width``-bit codes packed in ``word`` (inverse of :func:`pack`)."""
    mask, sign = (1 << width) - 1, 1 << (width - 1)
    out = []
    for k in range(n):
        v = (word >> (k * width)) & mask
        out.append(v - (1 << width) if v & sign else v)
    return out
