"""Pruning and digit budgets on jsc-toy (digits16): accuracy vs adders, PTQ and QAT.

Each variant is a uniform ``[quant]`` table (``width`` plus ``sparsity``/``max_digits``),
built exactly as a search trial builds it (``search.trial.ModelContext.build``: PTQ, or
quantisation-aware fine-tuning with the masks and digit budgets held).  Reported: test
accuracy of the integer reference, the adder count of the generator's graphs
(``hdl.layers.linear.build_graph`` of the network ``hdl.network.NetworkTop`` builds, i.e.
after dead-unit removal), zero weights, hidden neurons left, and with ``--synth`` the
Yosys ECP5 LUT-equivalents of the layers.  ``--dead``: heavy sparsity after QAT, the
network synthesised with and without dead-unit removal (per-layer synthesis cannot see that
the next layer ignores a neuron).  Writes bench/results/sparsity_digits.json.

    python bench/bench_sparsity.py [--width 6] [--epochs 30] [--synth] [--dead]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qspec.files import atomic_write  # noqa: E402

OUT = Path(__file__).parent / "results" / "sparsity_digits.json"
VARIANTS = {
    "ptq": {},
    "sparsity0.5": {"sparsity": 0.5},
    "max_digits2": {"max_digits": 2},
    "sparsity0.5+max_digits2": {"sparsity": 0.5, "max_digits": 2},
    "sparsity0.75": {"sparsity": 0.75},
    "max_digits1": {"max_digits": 1},
}

CONFIG = """
[model]
name = "jsc-toy"
activation = "relu"
dataset = "digits16"
[space.default]
width = [{width}]
[hardware]
enabled = false
[metrics.accuracy]
scale = 1.0
"""
TRAINING = "[training]\nepochs = {epochs}\nbatch_size = 128\nlr = 0.005\npatience = 10\nseed = 0\n"


def graph_adders(net) -> dict[str, int]:
    """Adders per Linear layer of the network NetworkTop builds (dead units removed)."""
    from hdl.layers.linear import build_graph
    from qspec.prune import remove_dead_units

    return {
        ly.name: sum(n.op == "add" for n in build_graph(ly, "adder_tree")[0].nodes)
        for ly in remove_dead_units(net).linear_layers
    }


def dead_units(width: int, epochs: int) -> list[dict]:
    """Synthesis (ECP5) with and without :func:`qspec.prune.remove_dead_units` in NetworkTop."""
    import hdl.network as hn
    from hdl.synth.network import synthesise_network
    from models.qconfig import QuantConfig
    from qspec.integer_forward import predict, quantise_input
    from qspec.prune import remove_dead_units
    from search.config import loads_config
    from search.trial import context_of

    text = CONFIG.format(width=width) + TRAINING.format(epochs=epochs)
    ctx = context_of(loads_config(text))
    test = ctx.dataset.test
    rows = []
    for sparsity in (0.85, 0.9):
        net, _ = ctx.build(
            QuantConfig.from_dict({"default": {"width": width, "sparsity": sparsity}})
        )
        acc = float(np.mean(predict(net, quantise_input(net, test.x)) == test.y))
        for stages in (0, 1):
            row = {"sparsity": sparsity, "epochs": epochs, "stages": stages, "test_accuracy": acc}
            row["hidden_left"] = [
                ly.out_features for ly in remove_dead_units(net).linear_layers[:-1]
            ]
            for removal in (True, False):
                keep = hn.remove_dead_units
                if not removal:  # NetworkTop as before dead-unit removal
                    hn.remove_dead_units = lambda n: n
                try:
                    r = synthesise_network(net, "ecp5", stages=stages, cache=False).total
                    tag = "removed" if removal else "kept"
                    row[tag] = {"lut_eq": r.lut_eq, "ffs": r.ffs, "adders": hn.adder_count(net)}
                finally:
                    hn.remove_dead_units = keep
            rows.append(row)
            print(json.dumps(row))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--synth", action="store_true")
    ap.add_argument("--dead", action="store_true")
    args = ap.parse_args()

    from models.qconfig import QuantConfig
    from qspec.integer_forward import predict, quantise_input
    from qspec.prune import remove_dead_units
    from search.config import loads_config
    from search.trial import context_of

    rows = []
    for epochs in (0, args.epochs):
        text = CONFIG.format(width=args.width)
        if epochs:
            text += TRAINING.format(epochs=epochs)
        ctx = context_of(loads_config(text))
        test = ctx.dataset.test
        for name, keys in VARIANTS.items():
            t0 = time.perf_counter()
            qc = QuantConfig.from_dict({"default": {"width": args.width, **keys}})
            net, record = ctx.build(qc)
            acc = float(np.mean(predict(net, quantise_input(net, test.x)) == test.y))
            adders = graph_adders(net)
            w = [np.array(ly.weight) for ly in net.linear_layers]
            row = {
                "variant": name,
                "epochs": epochs,
                "test_accuracy": acc,
                "graph_adders": sum(adders.values()),
                "graph_adders_per_layer": adders,
                "zero_weights": int(sum((x == 0).sum() for x in w)),
                "weights": int(sum(x.size for x in w)),
                "hidden_left": [
                    ly.out_features for ly in remove_dead_units(net).linear_layers[:-1]
                ],
                "qat_epoch": record.get("qat_epoch"),
            }
            if args.synth:
                from hdl.synth.network import synthesise_network

                res = synthesise_network(net, "ecp5")
                row["lut_eq"] = res.total.lut_eq
            row["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "graph_adders_per_layer"}))
    result = {"model": "jsc-toy", "dataset": "digits16", "width": args.width, "rows": rows}
    if args.dead:
        result["dead_units"] = dead_units(args.width, args.epochs)
    atomic_write(OUT, json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
