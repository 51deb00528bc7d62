"""Speed of the hardware model (``hdl.hwmodel``) per Linear group, in ms.

Every Linear group of jsc-tiny, jsc-toy and jsc-s at 4/6/8 bits, both adder-tree impls:
``graph_ms``, building the adder graph and walking it (``emitted``: the generator's own
CSE is most of it, paid once per layer and impl, memoised by ``predict_layer``), and per
stages 0/2 and target ``model_ms``, the prediction from it (``predict_emitted``, first
call, then ``warm_ms``).  Writes ``bench/results/hwmodel_speed.json``.

    python bench/bench_hwmodel.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_network import load_spec  # noqa: E402

from hdl.hwmodel import IMPLS, emitted, predict_emitted  # noqa: E402
from hdl.targets import TARGET_NAMES  # noqa: E402
from qspec.files import atomic_write  # noqa: E402
from qspec.network import LinearSpec, group_layers  # noqa: E402

OUT = Path(__file__).parent / "results" / "hwmodel_speed.json"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    rows = []
    for model in ("jsc-tiny", "jsc-toy", "jsc-s"):
        for bits in (4, 6, 8):
            for g in group_layers(load_spec(model, bits)):
                if not isinstance(g[0], LinearSpec):
                    continue
                for impl in IMPLS:
                    t0 = time.perf_counter()
                    em = emitted(g, impl)
                    graph_ms = (time.perf_counter() - t0) * 1e3
                    for stages in (0, 2):
                        for target in TARGET_NAMES:
                            times = []
                            for _ in range(args.repeat):
                                t0 = time.perf_counter()
                                predict_emitted(em, stages, target)
                                times.append((time.perf_counter() - t0) * 1e3)
                            rows.append({"case": f"{model}/{bits}bit/{g[0].name}/{impl}/p{stages}/"
                                         f"{target}", "graph_ms": round(graph_ms, 1),
                                         "ms": round(times[0], 2),
                                         "warm_ms": round(min(times[1:] or times), 2)})  # fmt: skip
    ms = [r["ms"] for r in rows]
    gms = [r["graph_ms"] for r in rows]
    out = {
        "meta": {"what": __doc__.splitlines()[0], "command": "python bench/bench_hwmodel.py"},
        "summary": {
            "n": len(ms),
            "model_median_ms": statistics.median(ms),
            "model_max_ms": max(ms),
            "graph_median_ms": statistics.median(gms),
            "graph_max_ms": max(gms),
        },
        "cases": rows,
    }
    atomic_write(OUT, json.dumps(out, indent=1))
    print(out["summary"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
