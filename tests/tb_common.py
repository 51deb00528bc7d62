"""Helpers shared by the cocotb testbenches (``tests/tb_*.py``)."""

from __future__ import annotations

import random
from collections.abc import Callable


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
