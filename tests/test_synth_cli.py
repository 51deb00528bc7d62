"""python -m hdl synth: table, JSON, exit status 2 for user errors."""

from __future__ import annotations

import json

import pytest

from hdl.cli import main
from hdl.export import export_leaky
from qspec.leaky import LeakyReLUSpec


@pytest.fixture
def vfile(tmp_path, monkeypatch):
    monkeypatch.setenv("HWFIRST_CACHE_DIR", str(tmp_path / "cache"))
    mod = export_leaky(LeakyReLUSpec.shift_variant(8, 4, 2))
    path = tmp_path / f"{mod.name}.v"
    path.write_text(mod.verilog)
    return path


def test_json_and_cache_report(vfile, capsys):
    assert main(["synth", str(vfile), "--json", "--target", "ice40"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert (data["lut4"], data["target"], data["cached"]) == (7, "ice40", False)
    assert "0 hit(s), 1 miss(es)" in err
    assert main(["synth", str(vfile)]) == 0
    out, _ = capsys.readouterr()
    assert "LUT4" in out and "lrelu_shift_w8_f4_n2" in out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--target", "xc7"], "--target must be one of ecp5, ice40"),
        (["--top", "nope"], "top 'nope' is not a module"),
    ],
)
def test_user_errors_exit_2(vfile, capsys, extra, message):
    assert main(["synth", str(vfile), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unreadable_and_broken_files_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HWFIRST_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["synth", str(tmp_path / "missing.v")]) == 2
    assert "cannot read FILE.v" in capsys.readouterr().err
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input a; endmodule\n")
    assert main(["synth", str(bad)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
