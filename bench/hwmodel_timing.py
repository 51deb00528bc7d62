"""Placement data for the hardware model's delay coefficients: nextpnr Fmax of small layers.

Each case is one layer group of a shipped checkpoint (a Linear and the ReLU after it, as
``hdl.network`` builds it) at 4/6/8 bits, ``impl`` and ``stages`` 0/1/2, synthesised and
placed in the registered wrapper (``synthesise(..., fmax=True)``, the synthesis cache on).
Every finished case is appended to ``bench/results/hwmodel_timing.json`` at once
(``--resume`` skips those already there); ``bench/fit_hwmodel.py`` fits the delay model.

    python bench/hwmodel_timing.py [--targets ecp5,ice40] [--models jsc-tiny,jsc-toy]
        [--bits 4,6,8] [--stages 0,1,2] [--layers fc4] [--resume] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_network import hdl_version, load_spec  # noqa: E402

from hdl.export import export_layer  # noqa: E402
from hdl.layers.linear import LinearLayer  # noqa: E402
from hdl.synth import SynthError, SynthTimeout, synthesise  # noqa: E402
from hdl.targets import target as get_target  # noqa: E402
from qspec.files import atomic_write  # noqa: E402
from qspec.network import LinearSpec, group_layers  # noqa: E402

OUT = Path(__file__).parent / "results" / "hwmodel_timing.json"


def case_key(model: str, bits: int, name: str, impl: str, stages: int, target: str) -> str:
    return f"{model}/{bits}bit/{name}/{impl}/p{stages}/{target}"


def cases(models, bits, stages, targets, layers=None):
    """(key, model, bits, group, impl, stages, target), smallest layers first."""
    out = []
    for target in targets:
        impl = get_target(target).linear_impl
        for model in models:
            for b in bits:
                for group in group_layers(load_spec(model, b)):
                    if not isinstance(group[0], LinearSpec):
                        continue
                    s = group[0]
                    if layers and s.name not in layers:
                        continue
                    size = s.in_features * s.out_features * b
                    for p in stages:
                        key = case_key(model, b, s.name, impl, p, target)
                        out.append((target != "ecp5", size, p, key, model, b, group, impl, target))
    out.sort(key=lambda c: c[:3])
    return [c[3:] for c in out]


def run_case(group, impl: str, stages: int, target: str, timeout: float) -> dict:
    comp = LinearLayer(group, impl=impl, stages=stages)
    mod = export_layer(comp, group, impl, stages)
    t0 = time.perf_counter()
    entry = {"module": mod.name, "hdl": hdl_version()}
    try:
        r = synthesise(mod.verilog, mod.name, target, fmax=True, dsp=False, timeout=timeout)
    except SynthTimeout:
        return entry | {"status": "timeout", "seconds": round(time.perf_counter() - t0, 1)}
    except SynthError as e:
        return entry | {"status": "crash", "error": str(e).splitlines()[0]}
    return entry | {
        "status": "ok",
        "seconds": round(time.perf_counter() - t0, 1),
        "cached": r.cached,
        "fmax_mhz": r.fmax_mhz,
        "lut_eq": r.lut_eq,
        "lut4": r.lut4,
        "carries": r.carries,
        "ffs": r.ffs,
        "depth": r.depth,
        "device": get_target(target).default_device,
        "notes": list(r.notes),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default="ecp5")
    p.add_argument("--models", default="jsc-tiny,jsc-toy")
    p.add_argument("--bits", default="4,6,8")
    p.add_argument("--stages", default="0,1,2")
    p.add_argument("--layers", default="", help="only these layer names (default: all)")
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    data = json.loads(args.out.read_text()) if args.resume and args.out.exists() else {}
    meta = data.setdefault("meta", {})
    meta["what"] = (
        "nextpnr Fmax (registered wrapper, seed 1, --freq per target, 1 thread) of one layer "
        "group (Linear + ReLU) of a shipped checkpoint; Yosys 0.70 counts of the bare layer"
    )
    cmd = "python bench/hwmodel_timing.py " + " ".join(argv or sys.argv[1:])
    meta["commands"] = meta.get("commands", []) + [cmd.strip()]
    results = data.setdefault("cases", {})
    todo = cases(
        args.models.split(","),
        [int(b) for b in args.bits.split(",")],
        [int(s) for s in args.stages.split(",")],
        args.targets.split(","),
        [x for x in args.layers.split(",") if x],
    )
    for key, model, b, group, impl, target in todo:
        stages = int(key.split("/")[-2][1:])
        if args.resume and results.get(key, {}).get("status") in ("ok", "timeout"):
            continue
        entry = run_case(group, impl, stages, target, args.timeout)
        results[key] = {"model": model, "bits": b, "layer": group[0].name, "impl": impl,
                        "stages": stages, "target": target} | entry  # fmt: skip
        atomic_write(args.out, json.dumps(data, indent=1))
        print(key, entry.get("status"), entry.get("fmax_mhz"), entry.get("seconds"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
