"""``python -m hdl``: export generators to Verilog (and, via sub-modules, more).

Errors are one line on stderr naming the option and what is allowed; exit 2.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from qspec.cli import CliError, OneLineParser, run_cli
from qspec.files import check_writable_dir
from qspec.leaky import LeakyReLUSpec

from .export import export_leaky, write_modules
from .synth.cli import add_synth_parser, run_synth

PROG = "python -m hdl"


def _add_export(sub) -> None:
    exp = sub.add_parser("export", help="write a generator's Verilog and update the manifest")
    kinds = exp.add_subparsers(dest="kind", required=True, parser_class=OneLineParser)
    lr = kinds.add_parser("leaky-relu", help="LeakyReLU (shift-only or multiplier)")
    lr.add_argument("--impl", choices=["shift", "mult"], required=True)
    lr.add_argument("--width", type=int, required=True, help="input width W, 2..32")
    lr.add_argument("--frac-width", type=int, required=True, help="input fraction bits")
    lr.add_argument("--shift", type=int, help="shift: slope 2^-n, 0 <= n <= W")
    lr.add_argument("--slope", type=float, help="mult: the slope, a real number")
    lr.add_argument("--slope-width", type=int, help="mult: slope code width (default W)")
    lr.add_argument("--slope-frac-width", type=int, help="mult: slope fraction bits (default F)")
    lr.add_argument("--runtime-slope", action="store_true", help="mult: slope as an input port")
    lr.add_argument("--out-width", type=int, help="output width (default W)")
    lr.add_argument("--out-frac-width", type=int, help="output fraction bits (default F)")
    lr.add_argument("--rounding", choices=["floor", "nearest"], default="floor")
    lr.add_argument("--overflow", choices=["saturate", "wrap"], default="saturate")
    lr.add_argument("--lanes", type=int, help="streamed form with this many values per beat")
    lr.add_argument("--stages", type=int, default=0, help="pipeline registers (streamed form)")
    lr.add_argument("--out", type=Path, default=Path("verilog_out"), help="output directory")


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
        spec = LeakyReLUSpec.shift_variant(args.width, args.frac_width, args.shift, **common)
    else:
        if args.shift is not None:
            raise CliError("--shift is only valid with --impl shift")
        if args.slope is None:
            raise CliError("--slope is required with --impl mult (a real number)")
        if not math.isfinite(args.slope):
            raise CliError(f"--slope must be a finite real number, got {args.slope}")
        spec = LeakyReLUSpec.mult_variant(
            args.width,
            args.frac_width,
            args.slope,
            slope_width=args.slope_width,
            slope_frac_width=args.slope_frac_width,
            **common,
        )
    if args.lanes is None and args.stages:
        raise CliError("--stages requires --lanes (the streamed form)")
    mod = export_leaky(spec, lanes=args.lanes, stages=args.stages, runtime_slope=args.runtime_slope)
    check_writable_dir("--out", args.out)
    write_modules([mod], args.out)
    print(f"wrote {args.out / (mod.name + '.v')} (slope {float(spec.slope)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    _add_export(sub)
    add_synth_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        if args.command == "export":
            return _export_leaky(args)
        return run_synth(args)

    return run_cli(PROG, body)
