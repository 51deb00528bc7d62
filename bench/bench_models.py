"""Quantised vs float evaluation time per model, plus the accuracy/cost table.

For each shipped digits16 checkpoint, over the val split, all in this one run
(best of ``--repeat`` timings, each of an auto-ranged loop):
- ``fake_quant_ratio`` = fake-quantised PyTorch evaluation / float evaluation;
- ``integer_ratio`` = integer-reference (numpy) evaluation incl. input
  quantisation / float evaluation.
Also records float, 8-bit and 4-bit post-training-quantised *test* accuracy
and FLOPs, MACs, BitOPs, size.  Writes bench/results/models.json; ratios, never
absolute times, are the figures to quote.
"""

from __future__ import annotations

import argparse
import json
import timeit
from pathlib import Path

import numpy as np
import torch

from models.data import load_dataset
from models.fold import fold_batchnorm
from models.metrics import compute_metrics
from models.qconfig import QuantConfig
from models.quant import FakeQuantNet, quantise_network
from models.train import evaluate, load_float
from qspec.files import atomic_write
from qspec.integer_forward import predict, quantise_input

OUT = Path(__file__).parent / "results" / "models.json"
CHECKPOINTS = [
    ("jsc-tiny", "relu"),
    ("jsc-toy", "relu"),
    ("jsc-toy", "leaky_relu"),
    ("jsc-s", "relu"),
    ("jsc-s", "leaky_relu"),
]


def best_time(fn, repeat: int) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number


def bench_one(name: str, activation: str, ds, repeat: int) -> dict:
    model, meta = load_float(name, "digits16", activation)
    folded = fold_batchnorm(model)
    val = ds.val
    spec8 = quantise_network(folded, QuantConfig.uniform(8), ds.train.x)
    fq = FakeQuantNet(folded, spec8)

    def integer_eval() -> float:
        return float(np.mean(predict(spec8, quantise_input(spec8, val.x)) == val.y))

    t_float = best_time(lambda: evaluate(folded, val), repeat)
    t_fq = best_time(lambda: evaluate(fq, val), repeat)
    t_int = best_time(integer_eval, repeat)
    row = {
        "model": name,
        "activation": activation if name != "jsc-tiny" else None,
        "fake_quant_ratio": round(t_fq / t_float, 2),
        "integer_ratio": round(t_int / t_float, 2),
        "val_acc_float": evaluate(folded, val)[0],
        "val_acc_int8": integer_eval(),
        "test_acc_float": evaluate(folded, ds.test)[0],
        "checkpoint_test_acc": meta["test_acc"],
    }
    for bits in (8, 4):
        m = compute_metrics(folded, QuantConfig.uniform(bits), ds, "test", per_layer_accuracy=False)
        row[f"test_acc_int{bits}"] = m.accuracy
        row[f"bitops_int{bits}"] = m.bitops
        row[f"size_bits_int{bits}"] = m.size_bits
        row["macs"], row["flops"] = m.macs, m.flops
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # ratios are steadier without intra-op thread scheduling
    ds = load_dataset("digits16")
    rows = []
    for name, act in CHECKPOINTS:
        rows.append(bench_one(name, act, ds, args.repeat))
        print(json.dumps(rows[-1]))
    result = {
        "what": "val-split evaluation time, quantised / float, same run (best of repeats)",
        "torch": torch.__version__,
        "threads": 1,
        "flops_backend": "ptflops pytorch (module hooks, count_functional off)",
        "models": rows,
    }
    atomic_write(args.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
