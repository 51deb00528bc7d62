"""``python -m hdl synth FILE.v ...``: hardware metrics as a table (rich) or JSON."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

from qspec.cli import CliError, option_error
from qspec.files import check_writable_dir
from qspec.names import is_name, name_rule

from ..resources import Resources
from .cache import CACHE_ENV, SynthCache, default_cache_dir
from .flow import TARGETS, SynthError, check_target, check_timeout, manifest_timing, synthesise
from .yosys import BACKENDS

# API parameters (of a ParamError) -> the options that set them (synthesise)
SYNTH_OPTIONS = {"target": "--target", "timeout": "--timeout", "top": "--top"}


def add_synth_parser(subparsers) -> None:
    p = subparsers.add_parser("synth", help="synthesise Verilog and report LUTs, FFs, DSPs, Fmax")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE.v")
    p.add_argument("--top", help="top module (default: the only uninstantiated module)")
    p.add_argument("--target", default="ecp5", help=f"one of {', '.join(TARGETS)}")
    p.add_argument(
        "--dsp",
        action=argparse.BooleanOptionalAction,
        help="map multipliers to DSPs (default: ecp5 yes, ice40 no)",
    )
    p.add_argument("--fmax", action="store_true", help="also place and route for Fmax (slower)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--backend", choices=BACKENDS, help="Yosys backend (default: pyosys if found)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per tool run")
    p.add_argument("--cache-dir", type=Path, help="cache directory (default $HWFIRST_CACHE_DIR)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read FILE.v {str(path)!r}: {e.__class__.__name__}") from None


def _cache(directory: Path | None) -> SynthCache:
    """The cache in ``--cache-dir`` (or the default), checked usable before any synthesis."""
    option = "--cache-dir" if directory is not None else f"${CACHE_ENV} (the cache directory)"
    cache = SynthCache(check_writable_dir(option, directory or default_cache_dir()))
    try:
        cache.get("")  # opens (creates) the database: fails now, not after a long synthesis
    except sqlite3.Error as e:
        raise CliError(f"{option}: cannot use the cache database {cache.path}: {e}") from None
    cache.misses = 0
    return cache


def run_synth(args) -> int:
    try:
        check_target(args.target)
        check_timeout(args.timeout)
    except ValueError as e:
        raise option_error(e, SYNTH_OPTIONS) from None
    texts = [(path, _read(path)) for path in args.files]
    cache = False if args.no_cache else _cache(args.cache_dir)
    rows: list[tuple[Path, str, Resources]] = []
    from rich.console import Console

    err = Console(stderr=True)
    for path, text in texts:
        from .flow import infer_top

        top = args.top or infer_top(text)
        if args.top is None and not is_name(top):  # it would be spliced into the script
            raise CliError(f"FILE.v {str(path)!r}: its top module {top!r} must be {name_rule()}")
        latency, ii = manifest_timing(path, top)
        with err.status(f"synthesising {top} for {args.target}…", spinner="dots"):
            try:
                res = synthesise(
                    text,
                    top,
                    args.target,
                    fmax=args.fmax,
                    dsp=args.dsp,
                    latency=latency,
                    initiation_interval=ii,
                    backend=args.backend,
                    timeout=args.timeout,
                    cache=cache,
                )
            except SynthError as e:
                print(f"python -m hdl synth: {path}: {e}", file=sys.stderr)
                print(e.log_tail, file=sys.stderr)
                return 1
            except ValueError as e:
                raise option_error(e, SYNTH_OPTIONS) from None
        rows.append((path, top, res))
    if args.json:
        out = [{"file": str(p), "top": t, **r.to_dict()} for p, t, r in rows]
        print(json.dumps(out if len(out) > 1 else out[0], indent=2))
    else:
        _print_table(rows)
    if cache is not False:
        print(f"cache {cache.path}: {cache.hits} hit(s), {cache.misses} miss(es)", file=sys.stderr)
    return 0


def _fmt(v) -> str:
    if v is None:
        return "–"
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def _print_table(rows) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"synthesis ({rows[0][2].target})")
    cols = (
        "lut_eq",
        "lut4",
        "ffs",
        "carries",
        "dsps",
        "brams",
        "cells",
        "depth",
        "fmax_mhz",
        "latency",
        "initiation_interval",
    )
    heads = ("LUT-eq", "LUT4", "FF", "CARRY", "DSP", "BRAM", "cells", "depth", "Fmax MHz")
    heads += ("latency", "II")
    table.add_column("top", no_wrap=True)
    for h in heads:
        table.add_column(h, justify="right")
    table.add_column("cache")
    for _, top, r in rows:
        table.add_row(top, *(_fmt(getattr(r, c)) for c in cols), "hit" if r.cached else "miss")
    console = Console()
    if not console.is_terminal:  # pipes get the whole table, not an 80-column squeeze
        console = Console(width=160)
    console.print(table)
    for _, top, r in rows:
        for note in r.notes:
            print(f"note ({top}): {note}")
