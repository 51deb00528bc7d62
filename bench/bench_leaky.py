"""Exhaustive-check throughput for a W=16 LeakyReLU core -> bench/results/leaky.json.

All 65 536 input codes are checked against the expected outputs four ways, all
in this one run on this one machine:

* Amaranth's own simulator (``amaranth.sim.Simulator``, async testbench with
  ``ctx.set``/``ctx.get``) on the generator's component;
* cocotb on the exported Verilog (``hdl/rtlsim/tb_leaky.py``), per simulator,
  timed by cocotb's own per-test real time (simulator start-up excluded);
* a bare Verilog testbench that loops over every input inside the simulator
  and compares with ``$readmemh`` data (Icarus ``vvp``; ``verilator --binary``),
  timed as the difference between a run of ``R`` passes and a run of 1 pass, so
  start-up cancels out.

Absolute times depend on the machine and its load; the ratios (same run, same
machine) are the figures to quote.  Usage: ``python bench/bench_leaky.py
[--out bench/results/leaky.json] [--sims verilator,icarus] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from amaranth.sim import Simulator  # noqa: E402

from hdl.export import export_leaky  # noqa: E402
from hdl.layers.leaky import LeakyReLU  # noqa: E402
from hdl.rtlsim import runner as simlib  # noqa: E402
from models.leaky_reference import leaky_relu_reference  # noqa: E402
from qspec.leaky import LeakyReLUSpec  # noqa: E402

SPEC = LeakyReLUSpec.mult_variant(16, 8, 77 / 256)
BARE_PASSES = {"icarus": 5, "verilator": 200}

BARE_TB = """`timescale 1ns/1ps
module bare_tb;
  localparam integer N = {n};
  reg signed [{w}-1:0] x;
  wire signed [{ow}-1:0] y;
  reg [{ow}-1:0] expected [0:N-1];
  integer i, r, passes, errors;
  {top} dut (.x(x), .y(y));
  initial begin
    $readmemh("{hex}", expected);
    if (!$value$plusargs("passes=%d", passes)) passes = 1;
    errors = 0;
    for (r = 0; r < passes; r = r + 1)
      for (i = 0; i < N; i = i + 1) begin
        x = {lo} + i;
        #1;
        if (y !== expected[i]) errors = errors + 1;
      end
    $display("BARE vectors=%0d errors=%0d", passes * N, errors);
    $finish;
  end
endmodule
"""


def vectors() -> tuple[np.ndarray, np.ndarray]:
    fmt = SPEC.in_fmt
    x = np.arange(fmt.min_code, fmt.max_code + 1, dtype=np.int64)
    return x, leaky_relu_reference(SPEC, x)


def bench_amaranth(x: np.ndarray, y: np.ndarray) -> dict:
    dut = LeakyReLU(SPEC)
    xs, expected = x.tolist(), y.tolist()
    errors = 0

    async def testbench(ctx):
        nonlocal errors
        for xv, yv in zip(xs, expected, strict=True):
            ctx.set(dut.x, xv)
            if ctx.get(dut.y) != yv:
                errors += 1

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    t0 = time.perf_counter()
    sim.run()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "errors": errors}


def bench_cocotb(sim: str, work: Path, x: np.ndarray, y: np.ndarray) -> dict:
    mod = export_leaky(SPEC)
    # the tests' build cache (tests/.sim_build unless $HWFIRST_SIM_BUILD), all builds kept
    cache = os.environ.get(simlib.BUILD_ENV, ROOT / "tests" / ".sim_build")
    build = simlib.build(sim, mod.name, {f"{mod.name}.v": mod.verilog}, cache, keep=None)
    work.mkdir(parents=True, exist_ok=True)
    np.savez(work / "vectors.npz", x=x, y=y, in_width=16, out_width=16)
    t0 = time.perf_counter()
    env = {"HWFIRST_TB_VECTORS": str(work / "vectors.npz")}
    result = simlib.run(build, "hdl.rtlsim.tb_leaky", work, env, python_path=[ROOT])
    wall = time.perf_counter() - t0
    case = ElementTree.parse(result.results_xml).getroot().find(".//testcase")
    assert case is not None
    return {
        "seconds": float(case.get("time", "nan")),
        "wall_seconds_with_startup": wall,
        "errors": result.num_failed,
        "num_tests": result.num_tests,
    }


def _run_timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return seconds, proc.stdout


def bench_bare(sim: str, work: Path, x: np.ndarray, y: np.ndarray, repeats: int) -> dict:
    mod = export_leaky(SPEC)
    work.mkdir(parents=True, exist_ok=True)
    ow = SPEC.out_fmt.width
    hexfile = work / "expected.hex"
    hexfile.write_text("".join(f"{v & ((1 << ow) - 1):0{(ow + 3) // 4}x}\n" for v in y.tolist()))
    (work / "dut.v").write_text(mod.verilog)
    (work / "bare_tb.v").write_text(
        BARE_TB.format(
            n=x.size, w=SPEC.in_fmt.width, ow=ow, top=mod.name, hex=hexfile, lo=int(x[0])
        )
    )
    sources = [str(work / "bare_tb.v"), str(work / "dut.v")]
    env = dict(os.environ)
    if sim == "icarus":
        _run_timed(["iverilog", "-g2012", "-o", "bare.vvp", "-s", "bare_tb", *sources], work)
        cmd = ["vvp", "-n", "bare.vvp"]
    else:
        with simlib.sim_environ("verilator"):
            env = dict(os.environ)
        env.setdefault("CXXFLAGS", "-std=c++20")
        _run_timed(
            [
                "verilator",
                "--binary",
                *simlib.VERILATOR_ARGS,
                "--timescale",
                "1ns/1ps",
                "--top-module",
                "bare_tb",
                "-Mdir",
                "obj",
                "-o",
                "bare",
                *sources,
            ],
            work,
            env,
        )
        cmd = [str(work / "obj" / "bare")]
    passes = BARE_PASSES[sim]
    one, many = [], []
    errors = 0
    for _ in range(repeats):
        for p, store in ((1, one), (passes, many)):
            seconds, out = _run_timed([*cmd, f"+passes={p}"], work, env)
            m = re.search(r"BARE vectors=(\d+) errors=(\d+)", out)
            if not m or int(m.group(1)) != p * x.size:
                raise RuntimeError(f"bare {sim} testbench printed no result:\n{out[-2000:]}")
            errors += int(m.group(2))
            store.append(seconds)
    t1, tp = statistics.median(one), statistics.median(many)
    return {
        "passes": passes,
        "seconds_1_pass": t1,
        f"seconds_{passes}_passes": tp,
        "seconds_per_pass": (tp - t1) / (passes - 1),
        "errors": errors,
    }


def per_vector_us(seconds: float, n: int) -> float:
    return seconds / n * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "leaky.json")
    ap.add_argument("--sims", default="verilator,icarus")
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement (median)")
    args = ap.parse_args(argv)
    sims = [s for s in args.sims.split(",") if s]
    for s in sims:
        if s not in simlib.SIMULATORS:
            print(
                f"error: --sims: unknown simulator {s!r} (allowed: verilator,icarus)",
                file=sys.stderr,
            )
            return 2

    x, y = vectors()
    n = int(x.size)
    assert (y == SPEC.forward(x)).all()
    result: dict = {
        "benchmark": "leaky_relu exhaustive check, W=16",
        "design": export_leaky(SPEC).name,
        "vectors": n,
        "repeats": args.repeats,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "tools": {p: metadata.version(p) for p in ("amaranth", "cocotb", "verilator", "torch")},
        "note": "absolute times are this machine under its load at the time; quote the ratios",
    }
    result["tools"]["icarus"] = simlib.tool_version("icarus") if shutil.which("iverilog") else None

    runs = [bench_amaranth(x, y) for _ in range(args.repeats)]
    am_s = statistics.median(r["seconds"] for r in runs)
    result["amaranth_sim"] = {
        "seconds": am_s,
        "vectors_per_s": n / am_s,
        "us_per_vector": per_vector_us(am_s, n),
        "errors": sum(r["errors"] for r in runs),
    }
    print(f"amaranth.sim: {n / am_s:,.0f} vectors/s", flush=True)

    result["cocotb"], result["bare_loop"] = {}, {}
    ratios: dict = {
        "cocotb_over_bare_loop": {},
        "cocotb_over_amaranth_sim": {},
        "amaranth_sim_over_bare_loop": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench_leaky_") as tmp:
        for sim in sims:
            problem = simlib.simulator_problem(sim)
            if problem:
                result["cocotb"][sim] = result["bare_loop"][sim] = {"skipped": problem}
                print(f"{sim}: skipped ({problem})", flush=True)
                continue
            cruns = [
                bench_cocotb(sim, Path(tmp) / f"cocotb_{sim}_{k}", x, y)
                for k in range(args.repeats)
            ]
            c_s = statistics.median(r["seconds"] for r in cruns)
            result["cocotb"][sim] = {
                "seconds": c_s,
                "wall_seconds_with_startup": statistics.median(
                    r["wall_seconds_with_startup"] for r in cruns
                ),
                "vectors_per_s": n / c_s,
                "us_per_vector": per_vector_us(c_s, n),
                "failed_tests": sum(r["errors"] for r in cruns),
            }
            bare = bench_bare(sim, Path(tmp) / f"bare_{sim}", x, y, args.repeats)
            b_s = bare["seconds_per_pass"]
            bare |= {"vectors_per_s": n / b_s, "us_per_vector": per_vector_us(b_s, n)}
            result["bare_loop"][sim] = bare
            ratios["cocotb_over_bare_loop"][sim] = c_s / b_s
            ratios["cocotb_over_amaranth_sim"][sim] = c_s / am_s
            ratios["amaranth_sim_over_bare_loop"][sim] = am_s / b_s
            print(
                f"{sim}: cocotb {n / c_s:,.0f} vectors/s, bare loop {n / b_s:,.0f} vectors/s, "
                f"cocotb/bare per-vector time {c_s / b_s:,.1f}x",
                flush=True,
            )
    if all(s in result["cocotb"] and "seconds" in result["cocotb"][s] for s in SIMULATORS_BOTH):
        ratios["cocotb_icarus_over_cocotb_verilator"] = (
            result["cocotb"]["icarus"]["seconds"] / result["cocotb"]["verilator"]["seconds"]
        )
        ratios["bare_icarus_over_bare_verilator"] = (
            result["bare_loop"]["icarus"]["seconds_per_pass"]
            / result["bare_loop"]["verilator"]["seconds_per_pass"]
        )
    result["ratios"] = ratios
    bad = result["amaranth_sim"]["errors"] or any(
        v.get("failed_tests") or v.get("errors")
        for d in (result["cocotb"], result["bare_loop"])
        for v in d.values()
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n")
    tmp_out.replace(args.out)
    print(f"wrote {args.out}")
    if bad:
        print("error: some exhaustive check reported mismatches", file=sys.stderr)
        return 1
    return 0


SIMULATORS_BOTH = ("verilator", "icarus")

if __name__ == "__main__":
    sys.exit(main())
