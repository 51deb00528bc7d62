"""What ABC9's self-check costs: Yosys 0.70 with and without ``abc9.verify``.

ABC9 ends its script with ``&verify`` (a SAT equivalence check of its mapping); the
netlist is written before it, so the cell counts must be identical either way. For
Linear layers of the shipped models this measures one uncached ``synthesise`` each
way, in this one run, and checks the counts match. Writes bench/results/abc9_verify.json.

    python bench/bench_abc9_verify.py [--cases jsc-s/8/fc2/ecp5,...] [--timeout 1200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_linear import build  # noqa: E402
from bench_network import load_spec  # noqa: E402

import hdl.synth.flow as flow  # noqa: E402
from hdl.synth import SynthTimeout, synthesise  # noqa: E402
from hdl.synth.yosys import backend_version, resolve_backend  # noqa: E402
from qspec.files import atomic_write  # noqa: E402

OUT = Path(__file__).parent / "results" / "abc9_verify.json"
CASES = "jsc-toy/8/fc1/ecp5,jsc-toy/8/fc1/ice40,jsc-s/4/fc1/ecp5,jsc-s/4/fc3/ice40,jsc-s/8/fc2/ecp5"


def one(verilog: str, top: str, target: str, verify: bool, timeout: float) -> dict:
    flow.ABC9_VERIFY = verify
    t0 = time.perf_counter()
    try:
        r = synthesise(verilog, top, target, dsp=False, cache=False, timeout=timeout)
    except SynthTimeout:
        return {"status": "timeout", "yosys_s": f"> {timeout:g}"}
    finally:
        flow.ABC9_VERIFY = False
    return {
        "status": "ok",
        "yosys_s": round(time.perf_counter() - t0, 2),
        "lut_eq": r.lut_eq,
        "cell_types": r.cell_types,
        "depth": r.depth,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=CASES, help="model/bits/layer/target, comma separated")
    ap.add_argument("--timeout", type=float, default=1200.0)
    args = ap.parse_args(argv)
    rows = {}
    for case in args.cases.split(","):
        model, bits, name, target = case.split("/")
        layer = next(x for x in load_spec(model, int(bits)).linear_layers if x.name == name)
        verilog, top, _ = build(layer, "adder_tree")
        off = one(verilog, top, target, False, args.timeout)
        on = one(verilog, top, target, True, args.timeout)
        same = on["status"] != "ok" or (on["cell_types"], on["depth"]) == (
            off["cell_types"],
            off["depth"],
        )
        ratio = (
            round(off["yosys_s"] / on["yosys_s"], 3)
            if "ok" == on["status"] == off["status"]
            else None
        )
        rows[case] = {"module": top, "verify_off": off, "verify_on": on}
        rows[case] |= {"same_cells": same, "off_over_on": ratio}
        print(f"{case}: off {off['yosys_s']} s, on {on['yosys_s']} s, same cells: {same}")
        if not same:
            print(f"{case}: cell counts differ", file=sys.stderr)
            return 1
    meta = {
        "what": "uncached synthesise of one adder_tree Linear layer, abc9.verify off vs on",
        "yosys": backend_version(resolve_backend(None)),
        "command": "python bench/bench_abc9_verify.py " + " ".join(argv or sys.argv[1:]),
    }
    atomic_write(OUT, json.dumps({"meta": meta, "cases": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
