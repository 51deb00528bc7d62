"""``python -m models``: train, evaluate and export the quantised spec of JSC models.

Errors are one line on stderr naming the option/key and what is allowed; exit 2.
Paths are checked before torch is imported or anything is written.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from qspec.cli import CliError, OneLineParser, int_option, option_error, run_cli
from qspec.files import WriteError, atomic_write_many, check_output, check_writable_dir
from qspec.limits import MAX_EPOCHS, MAX_SEED
from qspec.vectors import InputSet, inputs_path

from .modelspec import ACTIVATIONS, DATASETS, DEFAULT_SLOPE, MODELS, SPLITS, ModelSpec
from .store import CHECKPOINTS_ENV, user_checkpoint_dir

PROG = "python -m models"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help=f"model: {'|'.join(MODELS)}")
    p.add_argument("--dataset", default="digits16", help=f"{'|'.join(DATASETS)}")
    p.add_argument("--data-file", type=Path, help="jsc: the .csv or .h5 file")
    p.add_argument("--activation", default="relu", help=f"{'|'.join(ACTIVATIONS)}")
    p.add_argument(
        "--slope", type=float, help=f"leaky_relu slope (default {DEFAULT_SLOPE}); part of the "
        "checkpoint name",
    )  # fmt: skip
    p.add_argument(
        "--seed", type=int_option("--seed", 0, MAX_SEED), default=0,
        help="training seed; part of the checkpoint name",
    )  # fmt: skip
    p.add_argument(
        "--checkpoints", type=Path,
        help=f"checkpoint directory (default: ${CHECKPOINTS_ENV}, else the user data directory); "
        "loading falls back to the shipped checkpoints",
    )  # fmt: skip


def _quant(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--bits", type=int, help="every width (frac widths calibrated), 1..16")
    g.add_argument("--config", type=Path, help="quantisation TOML ([default], [layers.NAME])")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    tr = sub.add_parser("train", help="train a model on a dataset and save a checkpoint")
    _common(tr)
    tr.add_argument(
        "--epochs", type=int_option("--epochs", 1, MAX_EPOCHS), default=200,
        help="maximum epochs (early stopping)",
    )  # fmt: skip
    tr.add_argument(
        "--qat", type=Path, metavar="CONFIG.toml",
        help="fine-tune the trained float model quantisation-aware for this config",
    )  # fmt: skip
    ev = sub.add_parser("eval", help="float and post-training-quantised metrics")
    _common(ev)
    _quant(ev)
    ev.add_argument("--split", default="test", help="val|test (default test)")
    ev.add_argument("--json", action="store_true", help="print the metrics as JSON")
    sp = sub.add_parser(
        "spec", help="write the QuantisedNetwork JSON (the input of hdl) and X.inputs.json"
    )
    _common(sp)
    _quant(sp)
    sp.add_argument(
        "--out", type=Path, required=True,
        help="output .json path; the test split's input codes and labels go to X.inputs.json",
    )  # fmt: skip
    return parser


def _check_choice(name: str, value: str, allowed) -> None:
    if value not in allowed:
        raise CliError(f"--{name} must be one of {'|'.join(allowed)}, got {value!r}")


def _slope(args) -> float:
    """The slope the checkpoint was trained with; given for anything else is an error."""
    if args.slope is None:
        return DEFAULT_SLOPE
    if args.activation != "leaky_relu" or not ModelSpec(args.name, 1, 1).has_activation:
        raise CliError(
            "--slope applies only to --activation leaky_relu on a model with hidden layers "
            f"({'|'.join(n for n, h in MODELS.items() if h)})"
        )
    return args.slope


def _check_paths(args) -> None:
    """Every path option, before any data is loaded or anything written."""
    if args.data_file is not None:
        f = args.data_file
        if args.dataset != "jsc":
            raise CliError(f"--data-file is only used with --dataset jsc, got {args.dataset}")
        if not f.exists():
            raise CliError(f"--data-file not found: {str(f)!r}")
        if not f.is_file():
            raise CliError(f"--data-file must be a file, but {str(f)!r} is not")
        if not os.access(f, os.R_OK):
            raise CliError(f"--data-file {str(f)!r} is not readable")
    ck = args.checkpoints
    if args.command == "train":
        option = "--checkpoints"
        if ck is None:
            option = f"${CHECKPOINTS_ENV}" if os.environ.get(CHECKPOINTS_ENV) else "checkpoints"
            ck = user_checkpoint_dir()
        args.checkpoints = check_writable_dir(option, ck)
    elif ck is not None and ck.exists() and not ck.is_dir():
        raise CliError(f"--checkpoints must be a directory, but {str(ck)!r} is a file")
    if args.command == "spec":
        for path in (args.out, inputs_path(args.out)):
            if path.is_dir():
                raise CliError(f"--out must be a file path, but {str(path)!r} is a directory")
        blocking = [a for a in args.out.parents if a.exists() and not a.is_dir()]
        if blocking:
            raise CliError(
                f"--out: cannot create {str(args.out)!r}: {str(blocking[0])!r} is a file"
            )
        check_writable_dir("--out", args.out.parent)
        for path in (args.out, inputs_path(args.out)):  # a FIFO, device, socket: refused
            try:
                check_output(path)
            except WriteError as e:
                raise CliError(f"--out: {e}") from None


def _quant_config(args):
    from .qconfig import QuantConfig

    if args.config is not None:
        return QuantConfig.from_toml(args.config)
    return QuantConfig.uniform(8 if args.bits is None else args.bits)


def _load(args):
    from .data import load_dataset
    from .train import load_float

    ds = load_dataset(args.dataset, args.data_file)
    model, meta = load_float(
        args.name, args.dataset, args.activation, args.checkpoints,
        slope=_slope(args), seed=args.seed,
    )  # fmt: skip
    return ds, model, meta


def _train(args) -> int:
    from .data import load_dataset
    from .train import TrainConfig, load_float, save_float, save_qat, train_float, train_qat

    cfg = TrainConfig(epochs=args.epochs, seed=args.seed)
    qconfig = None
    if args.qat is not None:
        from .qconfig import QuantConfig

        qconfig = QuantConfig.from_toml(args.qat)
    ds = load_dataset(args.dataset, args.data_file)
    slope = _slope(args)
    directory = args.checkpoints
    try:
        if qconfig is None:
            spec = ModelSpec(args.name, ds.num_features, ds.num_classes, args.activation, slope)
            model, meta = train_float(spec, ds, cfg)
            path = save_float(model, meta, directory)
            print(f"{args.name} on {ds.name}: test accuracy {meta['test_acc']:.4f} -> {path}")
            return 0
        from .fold import fold_batchnorm

        model, meta = load_float(
            args.name, args.dataset, args.activation, directory, slope=slope, seed=args.seed
        )
        fq, info = train_qat(fold_batchnorm(model), qconfig, ds, cfg)
        path = save_qat(fq, meta, info, directory)
    except OSError as e:
        raise CliError(f"--checkpoints: cannot write to {str(directory)!r}: {e.strerror}") from None
    print(f"{args.name} QAT on {ds.name}: test accuracy {info['test_acc']:.4f} -> {path}")
    return 0


def _eval(args) -> int:
    from .metrics import compute_metrics

    _check_choice("split", args.split, SPLITS)
    config = _quant_config(args)  # before loading data: bad widths fail fast
    ds, model, _ = _load(args)
    m = compute_metrics(model, config, ds, split=args.split)
    if args.json:
        print(json.dumps(m.to_dict(), indent=1))
        return 0
    print(f"{args.name} on {ds.name} ({args.split}): float acc {m.float_accuracy:.4f}, "
          f"quantised acc {m.accuracy:.4f} (loss {m.loss:.4f})")  # fmt: skip
    print(f"{'layer':6} {'in':>4} {'out':>4} {'w/b/a bits':>10} {'MACs':>6} {'FLOPs':>6} "
          f"{'BitOPs':>8} {'size':>7} {'acc(only)':>9}")  # fmt: skip
    for ly in m.layers:
        bits = f"{ly.weight_bits}/{ly.bias_bits}/{ly.act_bits}"
        print(f"{ly.name:6} {ly.in_features:4} {ly.out_features:4} {bits:>10} {ly.macs:6} "
              f"{ly.flops:6} {ly.bitops:8} {ly.size_bits:7} {ly.accuracy:9.4f}")  # fmt: skip
    print(f"{'total':6} {'':4} {'':4} {'':>10} {m.macs:6} {m.flops:6} {m.bitops:8} "
          f"{m.size_bits:7}")  # fmt: skip
    print(f"avg bits: weights {m.avg_weight_bits:.2f}, weights+biases {m.avg_param_bits:.2f}, "
          f"activations {m.avg_act_bits:.2f}")  # fmt: skip
    return 0


def input_vectors(spec, ds) -> InputSet:
    """The test split's input codes as the host quantises them, and its labels."""
    return InputSet.of(spec, ds.name, "test", ds.test.x, ds.test.y)


def _spec(args) -> int:
    from .fold import fold_batchnorm
    from .quant import quantise_network

    config = _quant_config(args)
    ds, model, _ = _load(args)
    spec = quantise_network(fold_batchnorm(model), config, ds.train.x, args.name)
    inputs = input_vectors(spec, ds).to_json()
    out_in = inputs_path(args.out)
    try:  # both or neither (the inputs first: a reader that finds the spec finds them)
        atomic_write_many({out_in: inputs, args.out: spec.to_json()})
    except WriteError as e:
        raise CliError(f"--out: {e}") from None
    print(f"wrote {args.out} and {out_in}")
    return 0


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        _check_choice("dataset", args.dataset, DATASETS)
        _check_choice("activation", args.activation, ACTIVATIONS)
        slope = DEFAULT_SLOPE if args.slope is None else args.slope
        try:
            ModelSpec(args.name, 1, 1, args.activation, slope)  # fast checks before torch
        except ValueError as e:
            raise option_error(e, {"slope": "--slope"}) from None
        _slope(args)
        if getattr(args, "bits", None) is not None:
            try:  # the widths' rule is QuantConfig's; checked before any path or data
                _quant_config(args)
            except ValueError as e:
                raise CliError(f"--bits: {str(e).splitlines()[0]}") from None
        _check_paths(args)
        return {"train": _train, "eval": _eval, "spec": _spec}[args.command](args)

    return run_cli(PROG, body)
