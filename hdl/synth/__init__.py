"""The synthesis flow: Yosys (pyosys or yowasp) cell counts and depth, nextpnr Fmax, a cache.

``hdl.resources.Resources`` is the result type; it imports none of this machinery.
"""

from ..resources import Resources
from .flow import (
    TARGETS,
    SynthError,
    SynthTimeout,
    cell_counts,
    check_target,
    infer_top,
    manifest_timing,
    synthesise,
)

__all__ = [
    "TARGETS",
    "Resources",
    "SynthError",
    "SynthTimeout",
    "cell_counts",
    "check_target",
    "infer_top",
    "manifest_timing",
    "synthesise",
]
