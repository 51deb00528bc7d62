"""``python -m hdl``: bad input is one line naming the option, exit 2, nothing written."""

from __future__ import annotations

import gc
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable

from hdl.cli import main
from hdl.layers.leaky import LeakyReLU, LeakyReLUStream
from qspec.leaky import LeakyReLUSpec

MULT = ["export", "leaky-relu", "--impl", "mult", "--width", "8", "--frac-width", "4"]


def _run(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--slope", "inf"], "--slope must be a finite real number, got inf"),
        (["--slope=-inf"], "--slope must be a finite real number, got -inf"),
        (["--slope", "nan"], "--slope must be a finite real number, got nan"),
    ],
)
def test_non_finite_slope(tmp_path, capsys, extra, message):
    code, err = _run(capsys, [*MULT, *extra, "--out", str(tmp_path / "o")])
    assert code == 2
    assert err == f"python -m hdl: error: {message}\n"
    assert not (tmp_path / "o").exists()


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("keep")
    code, err = _run(capsys, [*MULT, "--slope", "0.3", "--out", str(f)])
    assert (code, err) == (
        2,
        f"python -m hdl: error: --out must be a directory, but '{f}' is a file\n",
    )
    assert f.read_text() == "keep"


def test_out_below_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("keep")
    code, err = _run(capsys, [*MULT, "--slope", "0.3", "--out", str(f / "sub")])
    assert code == 2
    assert err.startswith("python -m hdl: error: --out: cannot create directory")
    assert err.count("\n") == 1


def test_cache_dir_is_a_file(tmp_path, capsys):
    v = tmp_path / "d.v"
    v.write_text("module d(input a, output y); assign y = a; endmodule\n")
    f = tmp_path / "file"
    f.write_text("")
    code, err = _run(capsys, ["synth", str(v), "--cache-dir", str(f)])
    assert code == 2
    assert err == f"python -m hdl: error: --cache-dir must be a directory, but '{f}' is a file\n"


@pytest.mark.parametrize(
    "make",
    [
        lambda: LeakyReLU(LeakyReLUSpec.shift_variant(8, 4, 1), runtime_slope=True),
        lambda: LeakyReLUStream(LeakyReLUSpec.shift_variant(8, 4, 1), lanes=0),
    ],
)
def test_rejected_component_does_not_warn_unused(make):
    """Parameters are checked before the object exists: no 'created but never used'."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError):
            make()
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, UnusedElaboratable)]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--slope", "0.3", "--slope-width", "1"], "--slope-width must be in [2, 32], got 1"),
        (
            ["--slope", "0.3", "--slope-frac-width", "999"],
            "--slope-frac-width must be in [-128, 256], got 999",
        ),
        (["--slope", "9", "--slope-frac-width", "4"], "--slope must be in [-8.0, 7.9375] for"),
        (["--slope", "0.3", "--out-width", "40"], "--out-width must be in [2, 32], got 40"),
        (["--slope", "0.3", "--lanes", "0"], "--lanes must be in [1, "),
    ],
)
def test_leaky_spec_errors_name_the_option(tmp_path, capsys, extra, message):
    """LeakyReLUSpec's ParamError names its parameter; the CLI shows the option."""
    code, err = _run(capsys, [*MULT, *extra, "--out", str(tmp_path / "o")])
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"python -m hdl: error: {message}"), err
    assert not (tmp_path / "o").exists()


def test_leaky_width_error_names_the_option(tmp_path, capsys):
    argv = ["export", "leaky-relu", "--impl", "shift", "--width", "1", "--frac-width", "0"]
    code, err = _run(capsys, [*argv, "--shift", "1", "--out", str(tmp_path / "o")])
    assert (code, err) == (2, "python -m hdl: error: --width must be in [2, 32], got 1\n")
