"""A native nextpnr-ecp5 against the yowasp (WebAssembly) build of the same release, in one
run: the same clock-driven layers placed by both (``$HWFIRST_NEXTPNR_ECP5``), seconds and
Fmax (``same_fmax``: whether the two builds placed alike; measured, not assumed).

    python bench/bench_nextpnr_native.py --native /path/to/nextpnr-ecp5 \\
        [--cases jsc-toy/8/fc1,jsc-s/4/fc4] [--clock-mhz 200]

Each case: Yosys alone (``fmax=False``), then Yosys + yowasp, then Yosys + native, all
uncached; nextpnr's seconds are the totals less Yosys's. Writes
bench/results/nextpnr_native.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_clock import TARGET  # noqa: E402
from bench_network import hdl_version, load_spec  # noqa: E402

from hdl.export import export_layer  # noqa: E402
from hdl.layers.linear import LinearLayer  # noqa: E402
from hdl.synth import synthesise  # noqa: E402
from hdl.synth.nextpnr import NATIVE_ENV, nextpnr_version, release  # noqa: E402
from qspec.network import group_layers  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "nextpnr_native.json"
ENV = NATIVE_ENV.format(TARGET.upper())


def timed(verilog: str, top: str, latency: int, fmax: bool, native: str | None):
    if native is None:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = native
    t0 = time.perf_counter()
    r = synthesise(verilog, top, TARGET, fmax=fmax, dsp=False, latency=latency, cache=False,
                   timeout=None)  # fmt: skip
    return r, time.perf_counter() - t0


def case(model: str, bits: int, layer: str, mhz: float, native: str) -> dict:
    (group,) = [g for g in group_layers(load_spec(model, bits)) if g[0].name == layer]
    comp = LinearLayer(group, clock_mhz=mhz, target=TARGET)
    mod = export_layer(comp, group, "adder_tree", comp.stages)
    _, yosys = timed(mod.verilog, mod.name, comp.latency, False, None)
    wasm, t_wasm = timed(mod.verilog, mod.name, comp.latency, True, None)
    nat, t_nat = timed(mod.verilog, mod.name, comp.latency, True, native)
    return {
        "case": f"{model}/{bits}bit/{layer}@{mhz:g}",
        "latency": comp.latency,
        "ffs": nat.ffs,
        "yosys_s": round(yosys, 1),
        "yowasp_fmax_mhz": wasm.fmax_mhz,
        "native_fmax_mhz": nat.fmax_mhz,
        "same_fmax": wasm.fmax_mhz == nat.fmax_mhz,
        "yowasp_pnr_s": round(t_wasm - yosys, 1),
        "native_pnr_s": round(t_nat - yosys, 1),
        "speedup": round((t_wasm - yosys) / max(t_nat - yosys, 1e-3), 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--native", required=True, help=f"a native nextpnr-ecp5 of {release(TARGET)}")
    p.add_argument("--cases", default="jsc-toy/8/fc1,jsc-s/4/fc4")
    p.add_argument("--clock-mhz", type=float, default=200.0)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    os.environ[ENV] = args.native
    native_version = nextpnr_version(TARGET)  # checks the binary before any placement
    rows = []
    for spec in args.cases.split(","):
        model, bits, layer = spec.split("/")
        rows.append(case(model, int(bits), layer, args.clock_mhz, args.native))
        print(json.dumps(rows[-1]), flush=True)
    os.environ.pop(ENV, None)
    out = {
        "meta": {
            "what": __doc__.splitlines()[0],
            "hdl": hdl_version(),
            "yowasp": nextpnr_version(TARGET),
            "native": native_version,
            "command": " ".join(["python", *sys.argv]),
        },  # fmt: skip
        "cases": rows,
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0  # unequal Fmax is a finding (same_fmax), not a failure of the bench


if __name__ == "__main__":
    sys.exit(main())
