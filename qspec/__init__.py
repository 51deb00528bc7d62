"""Torch-free shared vocabulary: fixed-point formats, rounding, layer specs."""

from .fixed import (
    FixedFormat,
    Overflow,
    Rounding,
    dequantise,
    handle_overflow,
    quantise,
    requantise,
    shift_right,
)
from .leaky import LeakyReLUSpec

__all__ = [
    "FixedFormat",
    "LeakyReLUSpec",
    "Overflow",
    "Rounding",
    "dequantise",
    "handle_overflow",
    "quantise",
    "requantise",
    "shift_right",
]
