"""``python -m models``: train, evaluate and export the quantised spec of JSC models.

Errors are one line on stderr naming the option/key and what is allowed; exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .data import DATASETS
from .modelspec import ACTIVATIONS, DEFAULT_SLOPE, MODELS, ModelSpec

PROG = "python -m models"


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise CliError(f"{self.prog}: {message}")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help=f"model: {'|'.join(MODELS)}")
    p.add_argument("--dataset", default="digits16", help=f"{'|'.join(DATASETS)}")
    p.add_argument("--data-file", type=Path, help="jsc: the .csv or .h5 file")
    p.add_argument("--activation", default="relu", help=f"{'|'.join(ACTIVATIONS)}")
    p.add_argument("--slope", type=float, default=DEFAULT_SLOPE, help="leaky_relu slope")
    p.add_argument(
        "--checkpoints", type=Path, help="checkpoint directory (default: models/checkpoints)"
    )


def _quant(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--bits", type=int, help="every width (frac widths calibrated), 1..16")
    g.add_argument("--config", type=Path, help="quantisation TOML ([default], [layers.NAME])")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    tr = sub.add_parser("train", help="train a model on a dataset and save a checkpoint")
    _common(tr)
    tr.add_argument("--epochs", type=int, default=200, help="maximum epochs (early stopping)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument(
        "--qat", type=Path, metavar="CONFIG.toml",
        help="fine-tune the trained float model quantisation-aware for this config",
    )  # fmt: skip
    ev = sub.add_parser("eval", help="float and post-training-quantised metrics")
    _common(ev)
    _quant(ev)
    ev.add_argument("--split", default="test", help="val|test (default test)")
    ev.add_argument("--json", action="store_true", help="print the metrics as JSON")
    sp = sub.add_parser("spec", help="write the QuantisedNetwork JSON (the input of hdl)")
    _common(sp)
    _quant(sp)
    sp.add_argument("--out", type=Path, required=True, help="output .json path")
    return parser


def _check_choice(name: str, value: str, allowed) -> None:
    if value not in allowed:
        raise CliError(f"--{name} must be one of {'|'.join(allowed)}, got {value!r}")


def _quant_config(args):
    from .qconfig import QuantConfig

    if args.config is not None:
        return QuantConfig.from_toml(args.config)
    return QuantConfig.uniform(8 if args.bits is None else args.bits)


def _load(args):
    from .data import load_dataset
    from .train import load_float

    ds = load_dataset(args.dataset, args.data_file)
    model, meta = load_float(args.name, args.dataset, args.activation, args.checkpoints)
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
    spec = ModelSpec(args.name, ds.num_features, ds.num_classes, args.activation, args.slope)
    directory = args.checkpoints
    if qconfig is None:
        model, meta = train_float(spec, ds, cfg)
        path = save_float(model, meta) if directory is None else save_float(model, meta, directory)
        print(f"{args.name} on {ds.name}: test accuracy {meta['test_acc']:.4f} -> {path}")
        return 0
    from .fold import fold_batchnorm

    model, meta = load_float(args.name, args.dataset, args.activation, directory)
    fq, info = train_qat(fold_batchnorm(model), qconfig, ds, cfg)
    path = save_qat(fq, meta, info) if directory is None else save_qat(fq, meta, info, directory)
    print(f"{args.name} QAT on {ds.name}: test accuracy {info['test_acc']:.4f} -> {path}")
    return 0


def _eval(args) -> int:
    from .metrics import compute_metrics

    _check_choice("split", args.split, ("val", "test"))
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


def _spec(args) -> int:
    from .fold import fold_batchnorm
    from .quant import quantise_network
    from .train import _atomic_write

    config = _quant_config(args)
    ds, model, _ = _load(args)
    spec = quantise_network(fold_batchnorm(model), config, ds.train.x, args.name)
    text = spec.to_json().encode()
    _atomic_write(args.out, lambda f: f.write(text))
    print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        _check_choice("dataset", args.dataset, DATASETS)
        _check_choice("activation", args.activation, ACTIVATIONS)
        ModelSpec(args.name, 1, 1, args.activation, args.slope)  # fast checks before torch
        return {"train": _train, "eval": _eval, "spec": _spec}[args.command](args)
    except (CliError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        prefix = "" if msg.startswith(PROG) else f"{PROG}: error: "
        print(f"{prefix}{msg}", file=sys.stderr)
        return 2
