"""``python -m studies.leaky``: run the study (or re-render its page from the JSON)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from qspec.cli import int_option, seconds_option
from qspec.limits import MAX_EPOCHS, MAX_SEEDS

from .config import (
    BITS,
    DOCS_DIR,
    JSON_PATH,
    MODELS,
    PAGE_NAME,
    QUICK,
    SEEDS,
    STUDY_ENV,
    StudyConfig,
)

PROG = "python -m studies.leaky"
DESCRIPTION = (
    "The LeakyReLU study (issue #10): is the shift-only LeakyReLU free, and does training at a"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The study's options (``python -m studies.leaky`` and ``python -m search study``)."""
    p.add_argument("--models", nargs="+", help=f"default: {' '.join(MODELS)}")
    p.add_argument(
        "--seeds",
        type=int_option("--seeds", 1, MAX_SEEDS),
        help=f"training seeds 0..N-1 (default {SEEDS})",
    )
    p.add_argument("--bits", type=int, nargs="+", help=f"default: {' '.join(map(str, BITS))}")
    p.add_argument("--quick", action="store_true",
                   help="jsc-toy, 2 seeds, 8/4 bits, short training; writes under "
                   "build/leaky_study_quick unless --docs/--json are given")  # fmt: skip
    p.add_argument(
        "--epochs",
        type=int_option("--epochs", 1, MAX_EPOCHS),
        help="float training epochs (default 200)",
    )
    p.add_argument(
        "--qat-epochs",
        type=int_option("--qat-epochs", 1, MAX_EPOCHS),
        help="QAT epochs (default 40)",
    )
    p.add_argument(
        "--hw-seeds",
        type=int_option("--hw-seeds", 0, MAX_SEEDS),
        help="seeds synthesised per cell (default 1)",
    )
    p.add_argument("--no-hw", action="store_true", help="skip synthesis (hardware: pending)")
    p.add_argument("--fmax-models", nargs="+", help="models placed for Fmax (default: jsc-toy)")
    p.add_argument(
        "--hw-budget", type=seconds_option("--hw-budget", "minutes"), metavar="MIN",
        help="minutes of synthesis; networks not started by then are listed as skipped",
    )  # fmt: skip
    p.add_argument("--study-dir", type=Path, help=f"trained networks (default ${STUDY_ENV} or "
                   "the user cache)")  # fmt: skip
    p.add_argument("--docs", type=Path, help="directory of the page and PNGs (default docs/)")
    p.add_argument(
        "--json", type=Path, help="results JSON (default bench/results/leaky_study.json)"
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--render-only", action="store_true",
        help="rewrite the page and PNGs from the --json results (nothing is run)",
    )  # fmt: skip


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    base = StudyConfig(**QUICK, quick=True) if args.quick else StudyConfig()
    over = {k: v for k, v in dict(
        models=tuple(args.models) if args.models else None, seeds=args.seeds,
        bits=tuple(args.bits) if args.bits else None, epochs=args.epochs,
        qat_epochs=args.qat_epochs, hw_seeds=args.hw_seeds,
        hw_budget=None if args.hw_budget is None else 60 * args.hw_budget,
        fmax_models=tuple(args.fmax_models) if args.fmax_models else None,
    ).items() if v is not None}  # fmt: skip
    if args.no_hw:
        over["hardware"] = False
    if "seeds" in over and "hw_seeds" not in over:
        over["hw_seeds"] = min(base.hw_seeds, over["seeds"])
    return replace(base, **over)


def run_from_args(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    quick_dir = Path("build") / "leaky_study_quick"
    docs = args.docs or (quick_dir if cfg.quick else DOCS_DIR)
    json_path = args.json or (quick_dir / "leaky_study.json" if cfg.quick else JSON_PATH)
    from qspec.files import check_writable_dir

    check_writable_dir("--docs", docs)
    if args.render_only:
        from .render import rerender

        result = rerender(json_path, docs)
    else:
        from .run import run_study

        result = run_study(cfg, root=args.study_dir, docs_dir=docs, json_path=json_path,
                           progress=not args.no_progress)  # fmt: skip
    v = result["verdict"]
    print(f"wrote {docs / PAGE_NAME} and {json_path}; hardware: {result['hardware_status']}; "
          f"accuracy claim: {v['accuracy_claim']}")  # fmt: skip
    return 0


def parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The study's argument parser (one-line usage errors)."""
    from qspec.cli import OneLineParser

    p = OneLineParser(prog=prog, description=DESCRIPTION)
    add_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from qspec.cli import run_cli

    p = parser()

    def body() -> int:
        return run_from_args(p.parse_args(argv))

    return run_cli(PROG, body)
