"""``python -m hdl``: export generators to Verilog, synthesise it, simulate it (verify).

Errors are one line on stderr naming the option and what is allowed; exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qspec.cli import CliError, OneLineParser, int_option, option_error, run_cli
from qspec.files import check_writable_dir, read_text
from qspec.fixed import OVERFLOWS, ROUNDINGS
from qspec.leaky import LEAKY_IMPLS, LeakyReLUSpec
from qspec.limits import MAX_RANDOM_CODES, MAX_SAMPLES, MAX_SEED
from qspec.network import QuantisedNetwork
from qspec.vectors import inputs_path, read_inputs

from .design import write_design
from .export import export_leaky, export_network, write_modules
from .hwmodel import IMPLS as MODELLED_IMPLS
from .params import LINEAR_IMPLS as IMPLS
from .params import MAX_STAGES
from .pipeline import MAX_MHZ, MIN_MHZ, check_clock
from .rtlsim.runner import SIMULATORS
from .synth.cli import add_synth_parser, run_synth
from .targets import TARGET_NAMES

PROG = "python -m hdl"


def _add_export(sub) -> None:
    exp = sub.add_parser("export", help="write a generator's Verilog and update the manifest")
    kinds = exp.add_subparsers(dest="kind", required=True, parser_class=OneLineParser)
    lr = kinds.add_parser("leaky-relu", help="LeakyReLU (shift-only or multiplier)")
    lr.add_argument("--impl", choices=LEAKY_IMPLS, required=True)
    lr.add_argument("--width", type=int, required=True, help="input width W, 2..32")
    lr.add_argument("--frac-width", type=int, required=True, help="input fraction bits")
    lr.add_argument("--shift", type=int, help="shift: slope 2^-n, 0 <= n <= W")
    lr.add_argument("--slope", type=float, help="mult: the slope, a real number")
    lr.add_argument("--slope-width", type=int, help="mult: slope code width (default W)")
    lr.add_argument("--slope-frac-width", type=int, help="mult: slope fraction bits (finest)")
    lr.add_argument("--runtime-slope", action="store_true", help="mult: slope as an input port")
    lr.add_argument("--out-width", type=int, help="output width (default W)")
    lr.add_argument("--out-frac-width", type=int, help="output fraction bits (default F)")
    lr.add_argument("--rounding", choices=ROUNDINGS, default="floor")
    lr.add_argument("--overflow", choices=OVERFLOWS, default="saturate")
    lr.add_argument("--lanes", type=int, help="streamed form with this many values per beat")
    lr.add_argument("--stages", type=int, default=0, help="pipeline registers (streamed form)")
    lr.add_argument("--out", type=Path, default=Path("verilog_out"), help="output directory")
    nw = kinds.add_parser("network", help="a QuantisedNetwork spec as one streaming top")
    nw.add_argument("spec", type=Path, metavar="SPEC.json", help="from `python -m models spec`")
    nw.add_argument("--impl", default="adder_tree", help=f"Linear layers: {'|'.join(IMPLS)}")
    nw.add_argument("--stages", default="0", help="registers per layer: K, or K1,K2,.. per layer")
    _add_clock(nw, "", "ecp5")
    nw.add_argument("--layer", help="export only this Linear layer's module (per-layer synthesis)")
    nw.add_argument("--argmax", action="store_true", help="class index above the logits")
    nw.add_argument("--inputs", type=Path, help="input codes (default: SPEC stem + .inputs.json)")
    nw.add_argument("--out", type=Path, default=Path("verilog_out"), help="output directory")


def clock_option(text: str) -> float:
    """An argparse ``type`` for ``--clock-mhz``: MHz in [MIN_MHZ, MAX_MHZ] (hdl.pipeline)."""
    try:
        return check_clock(float(text))
    except ValueError:  # not a number, or out of range: the text as the user wrote it
        raise CliError(
            f"--clock-mhz must be a number of MHz in [{MIN_MHZ:g}, {MAX_MHZ:g}], got {text!r}"
        ) from None


def _add_clock(parser, prefix: str, default_target: str) -> None:
    parser.add_argument(
        "--clock-mhz",
        type=clock_option,
        metavar="F",
        help=f"{prefix}place each layer's registers for this clock (the fewest stages that "
        "meet it, by the target's delay model) instead of --stages",
    )
    parser.add_argument(
        "--target",
        choices=TARGET_NAMES,
        help=f"with --clock-mhz: the delay model's target (default {default_target})",
    )


def _check_clock_options(args, stages: int | list[int] | None, impl: str | None) -> None:
    """``--clock-mhz`` replaces ``--stages`` (the manual override) and needs a modelled
    ``--impl``; ``--target`` only picks its delay model."""
    if args.clock_mhz is None:
        if args.target is not None:
            raise CliError("--target is only used with --clock-mhz (its delay model's target)")
        return
    if stages is not None and (any(stages) if isinstance(stages, list) else stages):
        raise CliError(
            f"--stages must be 0 with --clock-mhz (it places the registers; --stages is the "
            f"manual override), got {args.stages!r}"
        )
    if impl is not None and impl not in MODELLED_IMPLS:
        allowed = "|".join(MODELLED_IMPLS)
        raise CliError(f"--clock-mhz needs --impl {allowed} (the modelled ones), got {impl!r}")


def _add_verify(sub) -> None:
    ver = sub.add_parser("verify", help="simulate exported Verilog against the integer reference")
    kinds = ver.add_subparsers(dest="kind", required=True, parser_class=OneLineParser)
    nw = kinds.add_parser(
        "network", help="an exported network top on the test split + random codes (cocotb)"
    )
    nw.add_argument(
        "design",
        type=Path,
        metavar="SPEC.json|DIR|FILE.v",
        help="a spec (exported here), or what `hdl export network`/`search` wrote",
    )
    nw.add_argument(
        "--sim",
        choices=SIMULATORS,
        help="the simulator (default: verilator if usable, else icarus)",
    )
    nw.add_argument(
        "--impl", help="with SPEC.json: Linear layers adder_tree|mul (default adder_tree)"
    )
    nw.add_argument(
        "--stages", help="with SPEC.json: registers per layer, K or K1,K2,.. (default 0)"
    )
    _add_clock(nw, "with SPEC.json: ", "--netlist's target, else ecp5")
    nw.add_argument(
        "--argmax", action="store_true", default=None, help="with SPEC.json: class index port"
    )
    nw.add_argument(
        "--inputs", type=Path, help="test split codes+labels (default: the vectors beside DESIGN)"
    )
    nw.add_argument(
        "--samples",
        type=int_option("--samples", 0, MAX_SAMPLES),
        help="the first N test samples (all)",
    )
    nw.add_argument(
        "--random",
        type=int_option("--random", 0, MAX_RANDOM_CODES),
        default=200,
        help="random input codes after them (200)",
    )
    nw.add_argument(
        "--stalls",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random valid/ready stalls on both streams (default), else full rate only",
    )
    nw.add_argument(
        "--seed",
        type=int_option("--seed", 0, MAX_SEED),
        default=1,
        help="stalls and random codes (1)",
    )
    nw.add_argument(
        "--netlist",
        choices=TARGET_NAMES,
        help="simulate the mapped netlist of synth_TARGET (the metrics' flow), not the RTL",
    )
    nw.add_argument(
        "--netlist-file",
        type=Path,
        metavar="FILE.v",
        help="with --netlist: simulate this netlist of the design (write_verilog), not synthesise",
    )
    nw.add_argument("--json", action="store_true", help="print one JSON object")


# API parameters (of a ParamError) -> the options that set them: verify_network's,
# export_network's, and those of LeakyReLUSpec's variants and export_leaky
VERIFY_OPTIONS = {
    "sim": "--sim", "impl": "--impl", "stages": "--stages", "argmax": "--argmax",
    "inputs": "--inputs", "samples": "--samples", "random_codes": "--random", "seed": "--seed",
    "netlist": "--netlist", "netlist_verilog": "--netlist-file", "clock_mhz": "--clock-mhz",
    "target": "--target",
}  # fmt: skip
EXPORT_OPTIONS = {
    "layer": "--layer", "stages": "--stages", "impl": "--impl", "clock_mhz": "--clock-mhz",
    "target": "--target",
}  # fmt: skip
LEAKY_OPTIONS = {
    "width": "--width", "frac_width": "--frac-width", "shift": "--shift", "slope": "--slope",
    "slope_width": "--slope-width", "slope_frac_width": "--slope-frac-width",
    "out_width": "--out-width", "out_frac_width": "--out-frac-width", "rounding": "--rounding",
    "overflow": "--overflow", "lanes": "--lanes", "stages": "--stages",
}  # fmt: skip


def _verify_network(args) -> int:
    from .rtlsim import SimulationError, cocotb_problem, format_result, verify_network
    from .rtlsim.verify import NoVectors

    problem = cocotb_problem()
    if problem is not None:
        raise CliError(problem)
    if args.impl is not None and args.impl not in IMPLS:
        raise CliError(f"--impl must be one of {'|'.join(IMPLS)}, got {args.impl!r}")
    stages = None if args.stages is None else _parse_stages(args.stages)
    _check_clock_options(args, stages, args.impl)
    if args.samples == 0 and args.random == 0:
        raise CliError("--samples 0 and --random 0: nothing to simulate")
    netlist_verilog = None
    if args.netlist_file is not None:
        if args.netlist is None:
            raise CliError("--netlist-file needs --netlist ecp5|ice40 (the netlist's target)")
        netlist_verilog = read_text(args.netlist_file, "--netlist-file")
    try:
        result = verify_network(
            args.design,
            sim=args.sim,
            impl=args.impl,
            stages=stages,
            argmax=args.argmax,
            inputs=args.inputs,
            samples=args.samples,
            random_codes=args.random,
            stalls=args.stalls,
            seed=args.seed,
            netlist=args.netlist,
            netlist_verilog=netlist_verilog,
            clock_mhz=args.clock_mhz,
            target=args.target,
        )
    except SimulationError as e:  # not the design's fault: no results at all
        first = str(e).splitlines()[0]
        if args.json:
            print(json.dumps({"passed": False, "error": first}))
        else:
            print(f"{PROG}: simulation failed: {first}", file=sys.stderr)
        return 1
    except NoVectors as e:
        raise CliError(
            f"--inputs: no test vectors ({e.args[1]}): pass --inputs FILE (the .inputs.json "
            "`python -m models spec` writes; `python -m search verify` finds a study's), "
            "or --samples 0 for random codes only"
        ) from None
    except ValueError as e:
        raise option_error(e, VERIFY_OPTIONS) from None
    print(json.dumps(result.to_dict()) if args.json else format_result(result))
    return 0 if result.passed else 1


def _export_leaky(args) -> int:
    common = dict(
        rounding=args.rounding,
        overflow=args.overflow,
        out_width=args.out_width,
        out_frac_width=args.out_frac_width,
    )
    if args.impl == "shift":
        if args.shift is None:
            raise CliError("--shift is required with --impl shift (0 <= n <= W)")
        for opt in ("slope", "slope_width", "slope_frac_width"):
            if getattr(args, opt) is not None:
                raise CliError(f"--{opt.replace('_', '-')} is only valid with --impl mult")
        if args.runtime_slope:
            raise CliError("--runtime-slope is only valid with --impl mult")
    else:
        if args.shift is not None:
            raise CliError("--shift is only valid with --impl shift")
        if args.slope is None:
            raise CliError("--slope is required with --impl mult (a real number)")
    try:
        if args.impl == "shift":
            spec = LeakyReLUSpec.shift_variant(args.width, args.frac_width, args.shift, **common)
        else:  # LeakyReLUSpec checks the slope (finite, in the slope format's range)
            spec = LeakyReLUSpec.from_slope(
                args.width,
                args.frac_width,
                args.slope,
                "mult",
                slope_width=args.slope_width,
                slope_frac_width=args.slope_frac_width,
                **common,
            )
        if args.lanes is None and args.stages:
            raise CliError("--stages requires --lanes (the streamed form)")
        mod = export_leaky(
            spec, lanes=args.lanes, stages=args.stages, runtime_slope=args.runtime_slope
        )
    except ValueError as e:
        raise option_error(e, LEAKY_OPTIONS) from None
    check_writable_dir("--out", args.out)
    write_modules([mod], args.out)
    print(f"wrote {args.out / (mod.name + '.v')} (slope {float(spec.slope)})")
    return 0


def _parse_stages(text: str) -> int | list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = [-1]
    if any(not 0 <= v <= MAX_STAGES for v in values):
        raise CliError(
            f"--stages must be an int in [0, {MAX_STAGES}] or a comma list of them, got {text!r}"
        )
    return values[0] if "," not in text else values


def _read_spec(path: Path) -> QuantisedNetwork:
    try:
        return QuantisedNetwork.read(path, "SPEC")
    except ValueError as e:
        raise CliError(str(e)) from None


def _export_network(args) -> int:
    net = _read_spec(args.spec)
    stages = _parse_stages(args.stages)
    if args.impl not in IMPLS:
        raise CliError(f"--impl must be one of {'|'.join(IMPLS)}, got {args.impl!r}")
    _check_clock_options(args, stages, args.impl)
    if args.out.exists() and not args.out.is_dir():
        raise CliError(f"--out must be a directory, but {str(args.out)!r} is a file")
    try:
        mod = export_network(
            net,
            impl=args.impl,
            stages=stages,
            layer=args.layer,
            argmax=args.argmax,
            clock_mhz=args.clock_mhz,
            target=args.target or "ecp5",
        )
    except ValueError as e:  # name the option: the API names its parameter
        raise option_error(e, EXPORT_OPTIONS) from None
    if args.layer is not None:
        if args.inputs is not None:
            raise CliError("--inputs is not used with --layer (vectors are for whole networks)")
        if args.argmax:
            raise CliError("--argmax is not used with --layer (it sits above the last layer)")
        check_writable_dir("--out", args.out)
        write_modules([mod], args.out)
        print(f"wrote {args.out / (mod.name + '.v')} (layer {args.layer})")
        return 0
    inputs_file = args.inputs
    if inputs_file is None:
        default = inputs_path(args.spec)
        inputs_file = default if default.exists() else None
    inputs = None
    if inputs_file is not None:
        inputs = read_inputs(inputs_file, net, "--inputs" if args.inputs else "inputs")
    check_writable_dir("--out", args.out)
    write_design(net, mod, args.out, inputs)
    note = "" if inputs is not None else " (no inputs file: no vectors)"
    clock = mod.params.get("clock")
    at = "" if clock is None else f" at {clock['mhz']:g} MHz ({clock['target']})"
    print(f"wrote {args.out / (mod.name + '.v')}, latency {mod.latency}{at}{note}")
    for layer in mod.params.get("layers", ()):
        p = layer.get("placement")
        if p is not None and not p["met"]:  # the design is written: say what it will reach
            print(
                f"{PROG}: warning: {layer['name']}: the model predicts {p['fmax_mhz']:.0f} MHz "
                f"for its fastest placement, short of {clock['mhz']:g} MHz with the "
                f"{clock['target']} model's uncertainty margin",
                file=sys.stderr,
            )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    _add_export(sub)
    add_synth_parser(sub)
    _add_verify(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        if args.command == "export":
            return _export_network(args) if args.kind == "network" else _export_leaky(args)
        if args.command == "verify":
            return _verify_network(args)
        return run_synth(args)

    return run_cli(PROG, body)
