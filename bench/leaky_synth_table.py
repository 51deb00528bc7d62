"""``python bench/leaky_synth_table.py``: the LeakyReLU shift vs multiplier trade-off, synthesised.

Synthesises every design of :func:`designs` on ecp5 and ice40 (with Fmax) and
writes ``bench/results/synth_tables.json``, ``docs/synth_tables.md`` and the
README section between the ``synth-table`` markers. Cached, so a rerun only
synthesises what changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from readme_section import write_sections

from hdl.export import export_leaky
from hdl.resources import Resources
from hdl.synth import synthesise
from hdl.targets import TARGET_NAMES
from qspec.files import atomic_write
from qspec.leaky import LeakyReLUSpec

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "tests" / "baseline" / "leaky_relu_baseline.v"
WIDTHS, STAGES, TARGETS = (8, 12, 16), (0, 1), TARGET_NAMES


@dataclass(frozen=True)
class Design:
    width: int
    kind: str  # "shift" | "mult" | "baseline"
    slope: str  # as shown in the table
    stages: int
    verilog: str
    top: str
    params: tuple[tuple[str, int], ...] = ()


def designs() -> list[Design]:
    """Per width (F = W/2): shift 1/4, 1/8; mult 1/4, 0.3, runtime; baseline 1/4, 0.3, runtime."""
    base = BASELINE.read_text()
    out = []
    for w in WIDTHS:
        f = w // 2
        for stages in STAGES:
            lanes = 1 if stages else None  # stages need the streamed form
            for n in (2, 3):
                m = export_leaky(LeakyReLUSpec.shift_variant(w, f, n), lanes=lanes, stages=stages)
                out.append(Design(w, "shift", f"2^-{n}", stages, m.verilog, m.name))
            for slope, rt in ((0.25, False), (0.3, False), (0.3, True)):
                # the slope format the baseline assumes (W bits, F fractional); qspec's default
                # is now the finest format, which the baseline's ">>> F" would misread
                spec = LeakyReLUSpec.mult_variant(w, f, slope, slope_width=w, slope_frac_width=f)
                m = export_leaky(spec, lanes=lanes, stages=stages, runtime_slope=rt)
                shown = "runtime" if rt else f"{spec.slope_code}/2^{f}"
                out.append(Design(w, "mult", shown, stages, m.verilog, m.name))
                params = {
                    "W": w,
                    "SF": f,
                    "SLOPE": 0 if rt else spec.slope_code,
                    "RUNTIME": int(rt),
                    "STAGES": stages,
                }
                out.append(
                    Design(
                        w,
                        "baseline",
                        shown,
                        stages,
                        base,
                        "leaky_relu_baseline",
                        tuple(params.items()),
                    )
                )
    return out


def _run(job: tuple[Design, str]) -> Resources:
    d, target = job
    return synthesise(d.verilog, d.top, target, params=dict(d.params), fmax=True)


def measure(jobs_n: int = 2, progress: bool = True) -> list[tuple[Design, dict[str, Resources]]]:
    ds = designs()
    jobs = [(d, t) for d in ds for t in TARGETS]
    results: list[Resources] = []
    with ThreadPoolExecutor(jobs_n) as pool:  # the tools run in child processes
        for i, r in enumerate(pool.map(_run, jobs), 1):
            results.append(r)
            if progress:
                print(f"\r{i}/{len(jobs)} synthesised", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    it = iter(results)
    return [(d, {t: next(it) for t in TARGETS}) for d in ds]


def _cell(r: Resources, name: str) -> str:
    v = getattr(r, name)
    return "–" if v is None else (f"{v:.0f}" if isinstance(v, float) else str(v))


def markdown(rows) -> str:
    metrics = (
        ("lut4", "LUT4"),
        ("carries", "CARRY"),
        ("dsps", "DSP"),
        ("depth", "depth"),
        ("fmax_mhz", "Fmax"),
    )
    head = ["W", "design", "slope", "stages"] + [f"{t} {h}" for t in TARGETS for _, h in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d, res in rows:
        cells = [str(d.width), d.kind, d.slope, str(d.stages)]
        cells += [_cell(res[t], n) for t in TARGETS for n, _ in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(rows, root: Path = ROOT) -> None:
    table = markdown(rows)
    data = [
        {
            "width": d.width,
            "design": d.kind,
            "slope": d.slope,
            "stages": d.stages,
            "top": d.top,
            "params": dict(d.params),
            **{t: {k: v for k, v in r.to_dict().items() if k != "cached"} for t, r in res.items()},
        }
        for d, res in rows
    ]
    atomic_write(
        root / "bench" / "results" / "synth_tables.json", json.dumps(data, indent=1) + "\n"
    )
    atomic_write(root / "docs" / "synth_tables.md", "# LeakyReLU synthesis table\n\n" + table)
    write_sections(root / "README.md", {"synth-table": table}, required=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python bench/leaky_synth_table.py", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--jobs", type=int, default=2, help="parallel syntheses")
    args = ap.parse_args(argv)
    rows = measure(args.jobs)
    write(rows)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
